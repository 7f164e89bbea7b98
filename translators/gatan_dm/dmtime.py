"""Acquisition time of a DM image, from the locale-formatted text and the machine timestamps.

DigitalMicrograph writes dates in the PC's locale ("8/8/2016" US, "14/05/2019" European) and
12- or 24-hour times. Some tags also hold an unambiguous UTC stamp (Windows FILETIME in
``DataBar.Acquisition Time (OS)``, epoch milliseconds in ``Acquisition Start Time (epoch)``).
When both exist we use the stamp to pick the day/month order and to state the UTC offset.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)
_TIME_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?\s*$")
_DATE_RE = re.compile(r"^\s*(\d{1,4})[/.\-](\d{1,2})[/.\-](\d{1,4})\s*$")


def _utc_stamp(tags: dict[str, Any]) -> datetime | None:
    def num(v: Any) -> float | None:
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    ft = num(_get(tags, "DataBar", "Acquisition Time (OS)"))
    if ft and 1.0e17 < ft < 1.5e17:  # 1917..2076: a plausible FILETIME
        return _FILETIME_EPOCH + timedelta(microseconds=ft / 10)
    ms = num(_get(tags, "Acquisition", "Frame", "Sequence", "Acquisition Start Time (epoch)"))
    if ms and 1.0e12 < ms < 4.0e12:
        return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ms)
    return None


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _time_of(text: str) -> tuple[int, int, int] | None:
    m = _TIME_RE.match(text)
    if not m:
        return None
    h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    ampm = (m.group(4) or "").lower()
    if ampm == "pm" and h < 12:
        h += 12
    if ampm == "am" and h == 12:
        h = 0
    return (h, mi, s) if h < 24 and mi < 60 and s < 61 else None


def _date_candidates(text: str) -> list[tuple[int, int, int]]:
    m = _DATE_RE.match(text)
    if not m:
        return []
    a, b, c = (int(x) for x in m.groups())
    if a > 31:  # 2019/05/14 (year first)
        options = [(a, b, c)]
    else:
        options = [(c, a, b), (c, b, a)]  # US month/day first, then day/month
    out = []
    for y, mo, d in options:
        try:
            datetime(y, mo, d)
        except ValueError:
            continue
        if (y, mo, d) not in out:
            out.append((y, mo, d))
    return out


def acquisition_time(tags: dict[str, Any]) -> tuple[str | None, str | None]:
    """Return (ISO 8601 date-time or None, warning or None) for one image's ImageTags."""
    pairs = [("DataBar", "Acquisition Date", "Acquisition Time"),
             ("EELS", "Acquisition", "Date", "Start time"),
             ("SI", "Acquisition", "Date", "Start time")]
    date_txt = time_txt = None
    for p in pairs:
        base = _get(tags, *p[:-2]) if len(p) > 3 else _get(tags, p[0])
        if isinstance(base, dict) and isinstance(base.get(p[-2]), str) and isinstance(
                base.get(p[-1]), str):
            date_txt, time_txt = base[p[-2]], base[p[-1]]
            break
    utc = _utc_stamp(tags)
    hms = _time_of(time_txt) if time_txt else None
    dates = _date_candidates(date_txt) if date_txt else []
    if hms and dates:
        locals_ = [datetime(*d, *hms) for d in dates]
        if utc is not None:
            naive_utc = utc.replace(tzinfo=None)
            best = min(locals_, key=lambda t: abs((t - naive_utc).total_seconds()))
            off = best - naive_utc
            if abs(off) <= timedelta(hours=14):
                minutes = round(off.total_seconds() / 900) * 15
                tz = timezone(timedelta(minutes=minutes))
                return best.replace(tzinfo=tz).isoformat(), None
        warn = None
        if len(locals_) > 1:
            warn = (f"acquisition date '{date_txt}' is ambiguous (month/day or day/month); "
                    f"assumed month/day as in DigitalMicrograph's US default")
        return locals_[0].isoformat(), warn
    if utc is not None:
        return utc.replace(microsecond=0).isoformat().replace("+00:00", "Z"), None
    return None, None
