"""Scienta Omicron SES text export (.txt): ini-like [Info]/[Region N]/[Info N]/[Data N].

[Region N] gives the dimension names, sizes and scales, [Info N] the acquisition settings
(lens mode, pass energy, sweeps, photon energy...), [Data N] one row per energy: the energy
then one intensity per detector slice.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators.safeio import decode_text as _detect_text, without_trailing_junk
from translators.common import best_score, put, require_file, text, to_int
from translators.contract import Array, CorruptFile, Preview, Table, TranslationResult, load_vocabulary

__all__ = ["ScientaTxtTranslator"]

MAX_BYTES = 512 * 1024 * 1024
MAX_TABLE_SLICES = 16  # more slices than this go to HDF5 as a 2-D array
_SEC = re.compile(r"^\[(?P<name>[^\]]+?)(?:\s+(?P<n>\d+))?\]\s*$")
_STR = {"Region Name": "region_name", "Spectrum Name": "spectrum_name", "Lens Mode": "lens_mode",
        "Energy Scale": "energy_scale", "Acquisition Mode": "acquisition_mode",
        "Energy Unit": "energy_unit", "DetectorMode": "detector_mode"}
_NUM = {"Pass Energy": "pass_energy", "Excitation Energy": "excitation_energy",
        "Center Energy": "center_energy", "Low Energy": "low_energy", "High Energy": "high_energy",
        "Energy Step": "energy_step", "Step Time": "step_time"}
_INT = {"Number of Sweeps": "number_of_sweeps", "Detector First X-Channel": "detector_first_x_channel",
        "Detector Last X-Channel": "detector_last_x_channel",
        "Detector First Y-Channel": "detector_first_y_channel",
        "Detector Last Y-Channel": "detector_last_y_channel", "Number of Slices": "number_of_slices"}
_CONST = {"Instrument": "instrument", "Location": "location", "User": "user", "Sample": "sample",
          "Comments": "comments"}


def _looks_like(head: bytes) -> bool:
    t = head.lstrip(b"\xef\xbb\xbf").lstrip()
    return t.startswith(b"[Info]") and b"Number of Regions" in t[:400]


def _is_ses_file(p: Path) -> bool:
    with open(p, "rb") as fh:
        return _looks_like(fh.read(1024))


class ScientaTxtTranslator:
    name = "scienta-txt"
    version = "1.0.0"
    description = "Scienta Omicron SES spectra exported as text (.txt)"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        return best_score(paths, lambda p: 0.95 if _is_ses_file(p) else 0.0)

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        path = require_file(paths, _is_ses_file, "no Scienta SES text export "
                            "(must start with [Info] and 'Number of Regions')")
        if path.stat().st_size > MAX_BYTES:
            raise CorruptFile(f"{path.name}: larger than {MAX_BYTES} bytes")
        sections, data = _sections(path)
        info = sections.get(("Info", 0), {})
        nreg = to_int(info.get("Number of Regions"))
        res = TranslationResult(original={f"{k[0]} {k[1]}" if k[1] else k[0]: v
                                          for k, v in sections.items()})
        c: dict[str, Any] = {}
        put(c, "software_version", _s(info.get("Version")))
        put(c, "number_of_regions", nreg)
        region_nos = sorted(n for (name, n) in sections if name == "Region" and n)
        if nreg is not None and nreg != len(region_nos):
            raise CorruptFile(f"{path.name}: [Info] declares {nreg} regions but {len(region_nos)} "
                              "[Region N] sections are present (truncated file?)")
        for n in region_nos:
            reg, inf = sections[("Region", n)], sections.get(("Info", n), {})
            rows = data.get(n)
            if rows is None:
                raise CorruptFile(f"{path.name}: region {n} has no [Data {n}] section (truncated)")
            v = _variable(reg, inf)
            size = to_int(reg.get("Dimension 1 size"))
            if size is not None and size != rows.shape[0]:
                raise CorruptFile(f"{path.name}: [Data {n}] has {rows.shape[0]} rows but "
                                  f"'Dimension 1 size' is {size} (truncated file)")
            v["number_of_points"] = int(rows.shape[0])
            res.variable.append(v)
            if n == region_nos[0]:
                for key, voc in _CONST.items():
                    put(c, voc, _s(inf.get(key)))
                put(c, "measured_at", v.get("region_measured_at"))
                seq = _s(inf.get("Sequence"))
                put(c, "sequence_file", seq.replace("\\", "/").rsplit("/", 1)[-1] if seq else None)
            _tables(res, n, reg, v, rows)
        res.constant = c
        return res


def _sections(path: Path) -> tuple[dict[tuple[str, int], dict[str, str]], dict[int, np.ndarray]]:
    lines = without_trailing_junk(_detect_text(path.read_bytes(), where=path.name)[0].lstrip("\ufeff"), path.name).splitlines()
    sections: dict[tuple[str, int], dict[str, str]] = {}
    data: dict[int, np.ndarray] = {}
    cur: tuple[str, int] | None = None
    rows: list[list[float]] = []
    width = None

    def close() -> None:
        if cur and cur[0] == "Data":
            if not rows:
                raise CorruptFile(f"{path.name}: [Data {cur[1]}] is empty (truncated file)")
            data[cur[1]] = np.asarray(rows, dtype=float)

    for k, ln in enumerate(lines, start=1):
        s = ln.strip()
        m = _SEC.match(s)
        if m:
            close()
            cur, rows, width = (m["name"], int(m["n"] or 0)), [], None
            sections.setdefault(cur, {})
            continue
        if not s or cur is None:
            continue
        if cur[0] == "Data":
            parts = s.split()
            try:
                vals = [float(x) for x in parts]
            except ValueError:
                raise CorruptFile(f"{path.name}: line {k}: [Data {cur[1]}] row is not numeric: "
                                  f"{s[:60]!r}") from None
            width = width or len(vals)
            if len(vals) != width:
                raise CorruptFile(f"{path.name}: line {k}: {len(vals)} values, expected {width} "
                                  "(truncated or damaged row)")
            rows.append(vals)
        else:
            key, sep, val = s.partition("=")
            if sep:
                sections[cur][key.strip()] = val.strip()
    close()
    return sections, data


def _variable(reg: dict[str, str], inf: dict[str, str]) -> dict[str, Any]:
    v: dict[str, Any] = {}
    for key, voc in _STR.items():
        put(v, voc, _s(inf.get(key) if key in inf else reg.get(key)))
    for key, voc in _NUM.items():
        put(v, voc, _num(inf.get(key)))
    for key, voc in _INT.items():
        put(v, voc, to_int(inf.get(key)))
    date, time = _s(inf.get("Date")), _s(inf.get("Time"))
    if date and time and re.fullmatch(r"\d{4}-\d{2}-\d{2}", date) and re.fullmatch(r"\d{1,2}:\d{2}:\d{2}", time):
        v["region_measured_at"] = f"{date}T{int(time.split(':')[0]):02d}{time[time.index(':'):]}"
    put(v, "abscissa_label", _s(reg.get("Dimension 1 name")))
    return v


def _tables(res: TranslationResult, n: int, reg: dict[str, str], v: dict[str, Any],
            rows: np.ndarray) -> None:
    m = re.match(r"(.*?)\s*\[(.*)\]\s*$", reg.get("Dimension 1 name", ""))
    xname, xunit = (m[1], m[2]) if m else (reg.get("Dimension 1 name") or "energy", None)
    x, y = rows[:, 0], rows[:, 1:]
    tag = re.sub(r"[^A-Za-z0-9]+", "_", v.get("region_name", "")).strip("_")[:40]
    name = f"region{n:02d}" + (f"_{tag}" if tag else "")
    cols: dict[str, Any] = {xname: x}
    units: dict[str, str | None] = {xname: xunit}
    if y.shape[1] == 1:
        cols["intensity"], units["intensity"] = y[:, 0], None
    elif y.shape[1] <= MAX_TABLE_SLICES:
        for j in range(y.shape[1]):
            cols[f"intensity slice {j + 1}"], units[f"intensity slice {j + 1}"] = y[:, j], None
    else:
        cols["intensity (sum of slices)"], units["intensity (sum of slices)"] = y.sum(axis=1), None
        res.arrays.append(Array(name=name, data=y.T.copy(), attrs={"signal": "intensity"},
                                axes={"slice": {"size": y.shape[1]},
                                      xname: {"offset": float(x[0]), "unit": xunit or "",
                                              "scale": float(x[1] - x[0]) if len(x) > 1 else 0.0,
                                              "size": len(x)}}))
    res.tables.append(Table(name=name, columns=cols, units=units))
    if res.preview is None:
        res.preview = Preview(x=x, y=y.sum(axis=1), x_label=f"{xname} ({xunit or ''})",
                              y_label="intensity", title=v.get("region_name", ""))


def _s(v: Any) -> str | None:
    """SES ends some values with ';' (e.g. comments); the separator is not part of the value."""
    return text(("" if v is None else str(v)).strip().strip(";"))


def _num(v: Any) -> float | None:
    # Unlike translators.common.num this keeps NaN/inf: the writer then drops the value with a
    # warning, so a damaged setting shows in the report instead of vanishing silently.
    try:
        return float(str(v).strip())
    except (TypeError, ValueError):
        return None
