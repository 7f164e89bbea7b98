"""XDI 1.0 (XAFS Data Interchange, IXAS): "# Namespace.tag: value" header, then columns.

Layout: "# XDI/1.0 [app/version ...]", header fields, optional "# ///" free-text comments,
a "#----" separator, an optional "# label label ..." line and whitespace-separated rows.
Column.N gives "name [units]" for each column; files without them fall back to the
label line.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators.common import best_score, num, put, require_file, text
from translators.contract import CorruptFile, Preview, Table, TranslationResult, load_vocabulary
from translators.xafs.common import float_row, head, read_text

_MAGIC = re.compile(rb"^#\s*XDI/\d+\.\d+")
_FIELD = re.compile(r"^#\s*([A-Za-z][\w-]*)\.([\w-]+)\s*:\s?(.*)$")
_MAX_ROWS = 5_000_000
# XDI field (lower-cased) -> vocabulary key; numbers get their unit stripped.
_MAP = {
    "facility.name": "facility", "beamline.name": "beamline",
    "facility.xray_source": "xray_source", "mono.name": "monochromator",
    "sample.name": "sample_name", "sample.prep": "sample_preparation",
    "sample.formula": "sample_formula", "sample.temperature": "sample_temperature",
    "element.symbol": "element", "scan.element": "element",
    "element.edge": "edge", "scan.edge": "edge",
    "scan.start_time": "start_time", "scan.end_time": "end_time",
    # XDI 1.1 as written by EPICS StepScan (NSLS-II, APS): other spellings of the same fields
    "scanparameters.element": "element", "scanparameters.edge": "edge",
}
_NUMERIC = {"facility.energy": ("ring_energy", {"gev": 1.0, "mev": 1e-3}),
            "facility.current": ("ring_current_start", {"ma": 1.0, "a": 1e3}),
            "mono.d_spacing": ("mono_d_spacing", {"": 1.0, "a": 1.0, "angstrom": 1.0,
                                                   "å": 1.0, "nm": 10.0}),
            "mono.dspacing": ("mono_d_spacing", {"": 1.0, "a": 1.0, "angstrom": 1.0, "å": 1.0, "nm": 10.0}),
            "facility.ring_current": ("ring_current_start", {"": 1.0, "ma": 1.0, "a": 1e3}),
            "scanparameters.e0": ("edge_energy", {"": 1.0, "ev": 1.0, "kev": 1e3}),
            "scan.edge_energy": ("edge_energy", {"": 1.0, "ev": 1.0, "kev": 1e3})}


def _is_xdi(p: Path) -> bool:
    return bool(_MAGIC.match(head(p, 64)))


class XdiTranslator:
    name = "xafs-xdi"
    version = "1.0.0"
    description = "XDI 1.0 XAFS data interchange files (.xdi)"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        return best_score(paths, lambda p: 0.97 if _is_xdi(p) else 0.0)

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        path = require_file(paths, _is_xdi, "no XDI file (first line must start with '# XDI/1.0')")
        lines = read_text(path).splitlines()
        fields: dict[str, str] = {}
        comments: list[str] = []
        label_line: list[str] | None = None
        in_comments, data_start = False, None
        version_line = lines[0].lstrip("#").strip()
        for k, ln in enumerate(lines[1:], start=1):
            s = ln.strip()
            if not s.startswith("#"):
                data_start = k
                break
            body = s.lstrip("#").strip()
            if body.startswith("///"):
                in_comments = True
                continue
            if re.fullmatch(r"-{2,}.*", body):
                in_comments = False
                nxt = lines[k + 1].strip() if k + 1 < len(lines) else ""
                if nxt.startswith("#"):
                    label_line = nxt.lstrip("#").split()
                continue
            m = _FIELD.match(s)
            if m and not in_comments:
                fields[f"{m[1]}.{m[2]}"] = m[3].strip()
            elif in_comments:
                comments.append(body)
        if data_start is None:
            raise CorruptFile(f"{path.name}: header never ends; no data rows found")
        columns = _column_names(fields, label_line)
        rows = _rows(path, lines, data_start)
        ncol = rows.shape[1]
        names = [(columns.get(j + 1) or (f"column {j + 1}", None)) for j in range(ncol)]
        c: dict[str, Any] = {"file_format": version_line.split()[0] if version_line else "XDI"}
        apps = version_line.split()[1:]
        put(c, "software", text(" ".join(apps)) if apps else None)
        # "value  ||  EPICS PV" (XDI 1.1 StepScan): the value is before the bars; the PV stays in original
        low = {k.lower(): v.split("||", 1)[0].strip() for k, v in fields.items()}
        by_low = {k.lower(): k for k in fields}
        used: list[str] = []
        for key, voc in _MAP.items():
            if key in low and voc not in c and text(low[key]):
                put(c, voc, text(low[key]))
                used.append(f"fields/{by_low[key]}")
        warnings: list[str] = []
        for key, (voc, factors) in _NUMERIC.items():
            if key in low and voc not in c:
                v = _scaled(low[key], factors)
                if v is None:
                    warnings.append(f"{path.name}: {by_low[key]} = {low[key]!r}: not a number in a known unit "
                                    f"({', '.join(u or '(none)' for u in factors)}); kept only in original_metadata.json")
                    continue
                put(c, voc, v)
                used.append(f"fields/{by_low[key]}")
        dets = [f"{k.split('.', 1)[1]}: {v}" for k, v in fields.items() if k.lower().startswith("detector.")]
        put(c, "detectors", text("; ".join(dets)) if dets else None)
        put(c, "comment", text(" ".join(comments)) if comments else None)
        put(c, "column_labels", text(", ".join(n for n, _ in names)))
        put(c, "number_of_points", int(rows.shape[0]))
        put(c, "measurement_mode", _mode([n for n, _ in names]))
        for key in ("start_time", "end_time"):
            if key in c and not re.match(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", c[key]):
                c.pop(key)  # keep only ISO-8601 values under a date-time key (raw is in original)
            elif key in c:
                c[key] = c[key].replace(" ", "T", 1)
        cols: dict[str, Any] = {}
        units: dict[str, str | None] = {}
        for j, (n, u) in enumerate(names):
            name = n if n not in cols else f"{n} ({j + 1})"
            cols[name], units[name] = rows[:, j], u
        first = names[0][0].lower()
        if first.startswith("energy") and (names[0][1] or "ev").lower() in ("ev", "kev"):
            e = rows[:, 0] * (1e3 if (names[0][1] or "").lower() == "kev" else 1.0)
            put(c, "energy_start", float(e[0]))
            put(c, "energy_end", float(e[-1]))
        used += [f"fields/{k}" for k in fields if k.lower().startswith(("column.", "detector."))]
        res = TranslationResult(constant=c, warnings=warnings, used_keys=used + ["version"])
        res.original = {"version": version_line, "fields": fields, "comments": comments,
                        "labels": label_line or []}
        res.tables.append(Table(name="xafs_scan", columns=cols, units=units))
        res.preview = _preview(cols, c.get("sample_name", ""))
        return res


def _scaled(raw: str, factors: dict[str, float]) -> float | None:
    m = re.match(r"\s*([-+\d.eE]+)\s*([^\s]*)", raw)
    if not m or num(m[1]) is None:
        return None
    unit = m[2].lower().rstrip(".")
    if unit not in factors:
        return None  # unknown unit: value stays in `original` only
    return round(float(m[1]) * factors[unit], 10)


def _column_names(fields: dict[str, str], labels: list[str] | None) -> dict[int, tuple[str, str | None]]:
    out: dict[int, tuple[str, str | None]] = {}
    for k, v in fields.items():
        m = re.fullmatch(r"column\.(\d+)", k, re.I)
        if m and v.split("||", 1)[0].split():
            parts = v.split("||", 1)[0].split()
            out[int(m[1])] = (parts[0], parts[1] if len(parts) > 1 else None)
    if labels:
        for j, lab in enumerate(labels, start=1):
            out.setdefault(j, (lab, None))
    return out


def _rows(path: Path, lines: list[str], start: int) -> np.ndarray:
    out: list[list[float]] = []
    ncol = None
    for k in range(start, len(lines)):
        s = lines[k].split()
        if not s or lines[k].lstrip().startswith("#"):
            continue
        if ncol is None:
            ncol = len(s)
        if len(s) != ncol or len(out) >= _MAX_ROWS:
            raise CorruptFile(f"{path.name}: line {k + 1}: {len(s)} values, expected {ncol} "
                              "(truncated or damaged row)")
        out.append(float_row(path, k + 1, s, lines[k]))
    if not out:
        raise CorruptFile(f"{path.name}: no data rows")
    return np.asarray(out, dtype=float)


def _mode(names: list[str]) -> str | None:
    low = " ".join(names).lower()
    if "mutrans" in low or "itrans" in low or re.search(r"\bi1\b|\bit\b", low):
        return "transmission"
    if "mufluor" in low or "ifluor" in low or re.search(r"\bif\b", low):
        return "fluorescence"
    if "murefer" in low or "irefer" in low:
        return "reference"
    return None


def _preview(cols: dict[str, Any], title: str) -> Preview | None:
    names = list(cols)
    if len(names) < 2:
        return None
    ypick = next((n for n in names if n.lower().startswith("mu")), names[-1])
    return Preview(x=cols[names[0]], y=cols[ypick], x_label=names[0], y_label=ypick, title=title)
