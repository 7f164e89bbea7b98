"""JEOL JAMP Auger (AES) datasets: a "<name>.A" folder holding `para`, `id` and `data`.

`para`/`id` are cp932 text with "$AP_KEY value" tags (indexed tags carry the index first:
"$AP_SPC_ROI_NAME  1 CuLMM"); `data` is big-endian int32 counts: the active ROI spectra one
after another, or the wide scan. Numbers like "1.989 8" are mantissa and negative decimal
exponent (1.989e-8).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators.progress import header_read, track
from translators.safeio import decode_text as _detect_text, read_text_head
from translators.common import best_score, first_matching, put, require_file, text, to_int
from translators.contract import CorruptFile, Preview, Table, TranslationResult, load_vocabulary

__all__ = ["JeolAesTranslator"]

MAX_TEXT = 4 * 1024 * 1024
MAX_DATA = 512 * 1024 * 1024
_TAG = re.compile(r"^\$(AP_\w+)\s*(.*)$")
_BLOCKS = ("COMMENT", "OPERATOR", "SPC_HISTORY")  # "$AP_X" ... "$AP_END_X" free text


def _is_para(p: Path) -> bool:
    h = read_text_head(p, 512)
    return h.startswith(b"#@(#) AP_") and b"$AP_SYSTEM_ID" in h and b"$AP_PENERGY" in h


def _is_id(p: Path) -> bool:
    h = read_text_head(p, 512)
    return h.startswith(b"#@(#) AP_") and b"$AP_ACQDATE" in h and b"$AP_PENERGY" not in h


def parse_tags(text: str) -> dict[str, Any]:
    """'$AP_KEY value' lines -> {KEY: value | {index: value}}, free-text blocks joined."""
    out: dict[str, Any] = {}
    block: str | None = None
    buf: list[str] = []
    for ln in text.splitlines():
        if block:
            end = f"$AP_END_{block}"
            if end in ln:
                buf.append(ln.split(end, 1)[0])
                out[block] = "\n".join(x for x in buf if x.strip()).strip()
                block, buf = None, []
            else:
                buf.append(ln)
            continue
        m = _TAG.match(ln.strip())
        if not m:
            continue
        key, val = m[1][3:], m[2].strip()
        if key in _BLOCKS:
            block, buf = key, ([val] if val else [])
            if f"$AP_END_{key}" in val:
                out[key] = val.split(f"$AP_END_{key}", 1)[0].strip()
                block, buf = None, []
            continue
        parts = val.split(None, 1)
        if (key.startswith(("SPC_ROI_", "SPOSN_", "SPC_CEMSTAT")) and len(parts) == 2
                and parts[0].isdigit()):
            out.setdefault(key, {})
            if isinstance(out[key], dict):
                out[key][int(parts[0])] = parts[1].strip()
            continue
        out[key] = val
    return out


def _sci(v: Any) -> float | None:
    """'1.989 8' -> 1.989e-8 (JEOL writes mantissa and negative exponent); '10.00' -> 10.0."""
    p = str(v or "").split()
    try:
        if len(p) == 2:
            return float(f"{float(p[0])}e-{int(p[1])}")
        return float(p[0]) if p else None
    except ValueError:
        return None


def _int(v: Any) -> int | None:
    return to_int(v, _sci)


class JeolAesTranslator:
    name = "jeol-aes"
    version = "1.0.0"
    description = "JEOL JAMP Auger spectra (<name>.A folders: para, id, data)"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        return best_score(paths, lambda p: 0.95 if _is_para(p) else 0.8 if _is_id(p) else 0.0)

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        ps = [Path(p) for p in paths]
        para = require_file(ps, _is_para, "no JEOL AES 'para' file "
                            "(text starting '#@(#) AP_' with $AP_PENERGY)")
        idf = first_matching(ps, _is_id)
        data = next((p for p in ps if p.name.lower() == "data" and p != para), None)
        tags = parse_tags(_read_text(para))
        if idf is not None:
            for k, v in parse_tags(_read_text(idf)).items():
                tags.setdefault(k, v)
        res = TranslationResult(original={"para": tags})
        tags = track(tags, "para")  # the report counts the tags the code below reads as mapped
        res.constant = _constant(tags)
        rois = _rois(tags)
        res.variable = [r["meta"] for r in rois]
        header_read(res.original, res.constant)  # a bad data file now gives partial, keeping the header
        if data is None:
            res.warnings.append(f"{para.parent.name}: no 'data' file given; metadata only")
            return res
        size = data.stat().st_size
        if size > MAX_DATA:
            raise CorruptFile(f"{data.name}: {size} bytes exceeds {MAX_DATA}")
        roi_pts = sum(r["n"] for r in rois)
        wpts = _int(tags.get("SPC_WPOINTS")) or 0
        if str(tags.get("DATATYPE", "")).strip() == "5" and rois and size and size % (4 * roi_pts) == 0:
            _depth(res, data, rois, size // (4 * roi_pts))
            return res
        # The file holds either the active ROI spectra back to back, or the wide scan.
        if rois and size == 4 * roi_pts:
            res.constant["spectrum_kind"] = "ROI (narrow) spectra"
            segs = [(r["meta"].get("roi_name", f"ROI {i + 1}"), r["start"], r["step"], r["n"])
                    for i, r in enumerate(rois)]
        elif wpts and size == 4 * wpts:
            res.constant["spectrum_kind"] = "wide scan"
            segs = [("wide", _sci(tags.get("SPC_WSTART")) or 0.0, _sci(tags.get("SPC_WSTEP")) or 1.0, wpts)]
        else:
            raise CorruptFile(f"{data.parent.name}/{data.name}: {size} bytes match neither the "
                              f"{len(rois)} active ROIs ({roi_pts} points x 4 bytes) nor the wide "
                              f"scan ({wpts} points x 4 bytes); truncated or mismatched files")
        counts = np.fromfile(data, dtype=">i4").astype(float)
        off = 0
        for i, (name, start, step, n) in enumerate(segs, start=1):
            y = counts[off:off + n]
            off += n
            x = np.round(start + step * np.arange(n), 6)
            tag = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")
            res.tables.append(Table(name=f"spectrum{i:02d}_{tag}", columns={"kinetic energy": x, "counts": y},
                                    units={"kinetic energy": "eV", "counts": "counts"}))
        first = res.tables[0]
        res.preview = Preview(x=first.columns["kinetic energy"], y=first.columns["counts"],
                              x_label="kinetic energy (eV)", y_label="counts", title=first.name)
        return res


def _depth(res: TranslationResult, data: Path, rois: list[dict[str, Any]], cycles: int) -> None:
    """Data type 5 (depth): the ROI spectra back to back, once per sputter cycle.

    No JEOL document or official reader describes this layout (the official RDE_AES program reads
    only types 3 and 4, the latter as the ROI spectra back to back); it is inferred from the
    narrow layout and the file size, and the report says so."""
    counts = np.fromfile(data, dtype=">i4").astype(float).reshape(cycles, -1)
    res.constant["spectrum_kind"] = "depth profile (ROI spectra per cycle)"
    res.constant["number_of_cycles"] = cycles
    res.warnings.append(f"{data.parent.name}/{data.name}: depth data read as {cycles} cycle(s) of the "
                        f"{len(rois)} ROI spectra back to back, a layout inferred from the narrow scan's "
                        "and the file size (no JEOL documentation); check it against the vendor software")
    profile: dict[str, Any] = {"cycle": np.arange(1, cycles + 1)}
    units: dict[str, str | None] = {"cycle": None}
    off = 0
    for i, r in enumerate(rois, start=1):
        n, name = r["n"], str(r["meta"].get("roi_name", f"ROI {i}"))
        block = counts[:, off:off + n]
        off += n
        tag = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")
        cols: dict[str, Any] = {"kinetic energy": np.round(r["start"] + r["step"] * np.arange(n), 6)}
        cols.update({f"cycle {c + 1}": block[c] for c in range(cycles)})
        res.tables.append(Table(name=f"spectrum{i:02d}_{tag}", columns=cols,
                                units={k: ("eV" if k == "kinetic energy" else "counts") for k in cols}))
        profile[f"{name} summed counts"] = block.sum(axis=1)
        units[f"{name} summed counts"] = "counts"
    res.tables.append(Table(name="depth_profile", columns=profile, units=units))
    ys = [v for k, v in profile.items() if k != "cycle"]
    res.preview = Preview(x=[profile["cycle"]] * len(ys), y=ys, x_label="cycle",
                          y_label="summed counts per ROI", title="depth profile")


def _read_text(p: Path) -> str:
    if p.stat().st_size > MAX_TEXT:
        raise CorruptFile(f"{p.name}: {p.stat().st_size} bytes is too large for a JEOL tag file")
    return _detect_text(p.read_bytes(), where=p.name)[0].lstrip("\ufeff\r\n\t ")


def _constant(t: dict[str, Any]) -> dict[str, Any]:
    c: dict[str, Any] = {}
    put(c, "system_id", text(t.get("SYSTEM_ID")))
    put(c, "data_type", _int(t.get("DATATYPE")))
    d = str(t.get("ACQDATE") or "")
    if re.fullmatch(r"\d{14}", d):
        put(c, "measured_at", f"{d[:4]}-{d[4:6]}-{d[6:8]}T{d[8:10]}:{d[10:12]}:{d[12:14]}")
    put(c, "comment", text(t.get("COMMENT")))
    put(c, "operator", text(t.get("OPERATOR")))
    put(c, "probe_energy", _sci(t.get("PENERGY")))
    put(c, "probe_current", _sci(t.get("PCURRENT")))
    put(c, "magnification", _sci(t.get("MAG")))
    put(c, "chamber_pressure", _sci(t.get("CHAMBER_PRESS")))
    put(c, "stage_tilt", _sci(t.get("STGTILT")))
    for key, tag in (("wide_start", "SPC_WSTART"), ("wide_stop", "SPC_WSTOP"), ("wide_step", "SPC_WSTEP"),
                     ("wide_dwell_time", "SPC_WDWELL"), ("etching_time", "IGN_ETCHING_TIME")):
        put(c, key, _sci(t.get(tag)))
    put(c, "wide_points", _int(t.get("SPC_WPOINTS")))
    put(c, "wide_sweeps", _int(t.get("SPC_WSWEEPS")))
    put(c, "roi_table", text(t.get("SPC_ROI_TBLNAME")))
    put(c, "number_of_rois", _int(t.get("SPC_ROI_NOFEXE")))
    pos = t.get("SPOSN_NAME")
    if isinstance(pos, dict) and pos:
        put(c, "analysis_position", text(pos[min(pos)]))
    return c


def _rois(t: dict[str, Any]) -> list[dict[str, Any]]:
    def idx(key: str) -> dict[int, str]:
        v = t.get(key)
        return v if isinstance(v, dict) else {}

    exe, names = idx("SPC_ROI_EXEMOD"), idx("SPC_ROI_NAME")
    out = []
    for i in sorted(names):
        if str(exe.get(i, "1")).split()[0] != "1":
            continue  # ROI defined but not executed: no data in the file
        n = _int(idx("SPC_ROI_POINTS").get(i))
        start, step = _sci(idx("SPC_ROI_START").get(i)), _sci(idx("SPC_ROI_STEP").get(i))
        if not n or start is None or step is None:
            continue
        meta: dict[str, Any] = {"roi_name": text(names[i]), "roi_start": start,
                                "roi_stop": _sci(idx("SPC_ROI_STOP").get(i)), "roi_step": step,
                                "roi_points": n, "roi_dwell_time": _sci(idx("SPC_ROI_DWELL").get(i)),
                                "roi_sweeps": _int(idx("SPC_ROI_SWEEPS").get(i)),
                                "roi_rsf": _sci(idx("SPC_ROI_ACQRSF").get(i))}
        out.append({"n": n, "start": start, "step": step,
                    "meta": {k: v for k, v in meta.items() if v is not None}})
    return out
