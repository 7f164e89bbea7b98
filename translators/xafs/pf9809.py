"""KEK Photon Factory "9809" XAFS text format (PF, SPring-8 and SAGA-LS beamlines use it).

A fixed, positional header (facility/beamline, sample and times, ring, monochromator, mode,
energy blocks, counter) followed by rows of: calculated angle, observed angle, then one
column per counter channel (channel 1 is the counting time). Energy is not stored; it is
computed from the calculated Bragg angle and the crystal d-spacing.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators.common import best_score, num, put, require_file, text
from translators.contract import CorruptFile, Preview, Table, TranslationResult, load_vocabulary
from translators.xafs.common import angle_to_energy, float_row, head, read_text

_MAGIC = re.compile(rb"^\s*9809\s+\S+")
_TIMES = re.compile(r"^\s*(?P<name>.*?)\s+(?P<d1>\d{2,4}[./]\d{1,2}[./]\d{1,2})\s+(?P<t1>\d{1,2}:\d{2}(?::\d{2})?)"
                    r"\s*-\s*(?P<d2>\d{2,4}[./]\d{1,2}[./]\d{1,2})\s+(?P<t2>\d{1,2}:\d{2}(?::\d{2})?)"
                    r"\s*(?P<rest>.*)$")
_RING = re.compile(r"Ring\s*:\s*([-\d.]+)\s*GeV\s+([-\d.]+)\s*mA\s*-\s*([-\d.]+)\s*mA", re.I)
_MONO = re.compile(r"Mono\s*:\s*(?P<xtal>\S+)\s+D\s*=\s*(?P<d>[-\d.]+)\s*A"
                   r"(?:\s+Initial angle\s*=\s*(?P<ang>[-\d.]+))?", re.I)
_MODE = re.compile(r"^\s*(?P<bl>\S+)\s+(?P<mode>[A-Za-z][A-Za-z ]*?)\s*\(\s*(?P<code>-?\d+)\s*\)"
                   r"(?:.*?Repetition\s*=\s*(?P<rep>\d+))?(?:.*?Points\s*=\s*(?P<pts>\d+))?", re.I)
_PARAM = re.compile(r"Param file\s*:\s*(?P<pf>.*?)\s{2,}(?:energy axis\s*\((?P<ax>[^)]*)\))?"
                    r"(?:.*?Block\s*=\s*(?P<nb>\d+))?", re.I)
_BLOCK = re.compile(r"^\s*(\d+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+(\d+)\s*$")
_COUNTER = re.compile(r"^\s*(?P<ctr>\S+?)\s*(?:\(\s*-?\d+\s*\))?\s+NDCH\s*=\s*(?P<n>\d+)", re.I)
_MAX_POINTS = 5_000_000


def _is_9809(p: Path) -> bool:
    return bool(_MAGIC.match(head(p, 64)))


def _score(p: Path) -> float:
    h = head(p, 2048)
    if not _MAGIC.match(h):
        return 0.0
    return 0.95 if b"Ring" in h and b"Mono" in h else 0.5


def _date(d: str, t: str) -> str | None:
    parts = [int(x) for x in re.split(r"[./]", d)]
    y, mo, da = parts
    if y < 100:  # 9809 writes two-digit years
        y += 2000 if y < 70 else 1900
    hms = [int(x) for x in t.split(":")] + [0]
    if not (1 <= mo <= 12 and 1 <= da <= 31 and hms[0] < 24 and hms[1] < 60):
        return None
    return f"{y:04d}-{mo:02d}-{da:02d}T{hms[0]:02d}:{hms[1]:02d}:{hms[2]:02d}"


class Xafs9809Translator:
    name = "xafs-9809"
    version = "1.0.0"
    description = "KEK-PF 9809-format XAFS scans (.dat, .9809, numbered files)"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        return best_score(paths, _score)

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        path = require_file(paths, _is_9809, "no 9809 XAFS file (first line must start with '9809')")
        lines = read_text(path).splitlines()
        res = TranslationResult()
        c: dict[str, Any] = {"file_format": "9809"}
        orig: dict[str, Any] = {"header lines": lines[:min(len(lines), 40)]}
        tok = lines[0].split()
        put(c, "facility", text(tok[1]) if len(tok) > 1 else None)
        put(c, "beamline", text(" ".join(tok[2:])) if len(tok) > 2 else None)
        m = _TIMES.match(lines[1]) if len(lines) > 1 else None
        if m:
            put(c, "sample_name", text(m["name"]))
            put(c, "start_time", _date(m["d1"], m["t1"]))
            put(c, "end_time", _date(m["d2"], m["t2"]))
            sm = re.search(r"Serial#\s*(\S+)", m["rest"])
            put(c, "serial_number", text(sm.group(1)) if sm else None)
        elif len(lines) > 1:
            put(c, "sample_name", text(lines[1]))
        put(c, "comment", text(lines[2]) if len(lines) > 2 else None)
        d_spacing = None
        blocks: list[dict[str, Any]] = []
        i, data_start, labels, ndch = 3, None, None, None
        while i < min(len(lines), 200):
            ln = lines[i]
            if (m := _RING.search(ln)):
                put(c, "ring_energy", num(m[1]))
                put(c, "ring_current_start", num(m[2]))
                put(c, "ring_current_end", num(m[3]))
            elif (m := _MONO.search(ln)):
                put(c, "monochromator", text(m["xtal"]))
                d_spacing = num(m["d"])
                put(c, "mono_d_spacing", d_spacing)
                put(c, "initial_angle", num(m["ang"]) if m["ang"] else None)
            elif (m := _PARAM.search(ln)):
                put(c, "parameter_file", text(m["pf"]))
                put(c, "energy_axis", text(m["ax"]) if m["ax"] else None)
                put(c, "number_of_blocks", int(m["nb"]) if m["nb"] else None)
            elif (m := _BLOCK.match(ln)):
                blocks.append({"block_start_energy": float(m[2]), "block_end_energy": float(m[3]),
                               "block_step": float(m[4]), "block_dwell_time": float(m[5]),
                               "block_points": int(m[6])})
            elif (m := _COUNTER.match(ln)):
                put(c, "counter", text(m["ctr"]))
                ndch = int(m["n"])
                put(c, "number_of_channels", ndch)
            elif ln.strip().lower().startswith("angle"):
                labels = ln.split()
            elif (m := _MODE.match(ln)) and "mode" not in orig and "counter" not in c:
                orig["mode"] = ln.strip()
                mode = m["mode"].strip().lower()
                put(c, "measurement_mode", mode)
                if m["rep"]:
                    put(c, "repetition", int(m["rep"]))
                if m["pts"]:
                    put(c, "number_of_points", int(m["pts"]))
            elif labels and ln.strip().lower().startswith("mode"):
                orig["channel modes"] = ln.split()[1:]
            elif labels and ln.strip().lower().startswith("offset"):
                orig["channel offsets"] = ln.split()[1:]
                data_start = i + 1
                break
            i += 1
        if labels is None:
            raise CorruptFile(f"{path.name}: no column header line ('Angle(c) Angle(o) ...') "
                              "in the first 200 lines")
        if data_start is None:
            data_start = i + 1 if i < len(lines) else len(lines)
        rows = _rows(path, lines, data_start, len(labels))
        declared = c.get("number_of_points")
        if declared is not None and declared > _MAX_POINTS:
            raise CorruptFile(f"{path.name}: Points={declared} exceeds {_MAX_POINTS}")
        if declared is not None and rows.shape[0] < declared:
            raise CorruptFile(f"{path.name}: header declares Points={declared} but only "
                              f"{rows.shape[0]} data rows follow (truncated file)")
        if declared is None:
            c["number_of_points"] = int(rows.shape[0])
        if blocks and sum(b["block_points"] for b in blocks) != c["number_of_points"]:
            res.warnings.append(f"{path.name}: energy blocks add up to "
                                f"{sum(b['block_points'] for b in blocks)} points, header says "
                                f"{c['number_of_points']}")
        res.variable = blocks
        cols, units = _columns(labels, rows, d_spacing)
        if "energy" in cols and len(cols["energy"]):
            put(c, "energy_start", round(float(cols["energy"][0]), 3))
            put(c, "energy_end", round(float(cols["energy"][-1]), 3))
        put(c, "column_labels", text(", ".join(labels)))
        res.constant = c
        res.original = orig
        res.used_keys = list(orig)  # a positional format: every kept header part feeds the mapping
        res.tables.append(Table(name="xafs_scan", columns=cols, units=units))
        res.preview = _preview(cols, labels, c.get("measurement_mode", ""), c.get("sample_name", ""))
        if d_spacing is None:
            res.warnings.append(f"{path.name}: no 'Mono : ... D=' line; energy not computed")
        return res


def _rows(path: Path, lines: list[str], start: int, ncol: int) -> np.ndarray:
    out: list[list[float]] = []
    for k in range(start, len(lines)):
        s = lines[k].split()
        if not s:
            continue
        if len(out) >= _MAX_POINTS:
            raise CorruptFile(f"{path.name}: more than {_MAX_POINTS} data rows")
        if len(s) != ncol:
            raise CorruptFile(f"{path.name}: line {k + 1}: {len(s)} values but the column "
                              f"header has {ncol} (truncated or damaged row)")
        out.append(float_row(path, k + 1, s, lines[k]))
    if not out:
        raise CorruptFile(f"{path.name}: no data rows after line {start}")
    return np.asarray(out, dtype=float)


def _columns(labels: list[str], rows: np.ndarray, d: float | None):
    cols: dict[str, Any] = {}
    units: dict[str, str | None] = {}
    if d and labels[0].lower().startswith("angle"):
        cols["energy"] = np.round(angle_to_energy(rows[:, 0], d), 4)
        units["energy"] = "eV"
    for j, lab in enumerate(labels):
        low = lab.lower()
        if low.startswith("angle"):
            name, unit = lab, "deg"
        elif low.startswith("time"):
            name, unit = "count time", "s"
        else:
            name, unit = f"channel {lab}", "counts"
        cols[name], units[name] = rows[:, j], unit
    return cols, units


def _preview(cols: dict[str, Any], labels: list[str], mode: str, title: str) -> Preview | None:
    chans = [k for k in cols if k.startswith("channel ")]
    x = cols.get("energy")
    if x is None or not chans:
        return None
    i0, last = cols[chans[0]], cols[chans[-1]]
    with np.errstate(divide="ignore", invalid="ignore"):
        if mode.startswith("trans") and len(chans) > 1:
            y, lab = np.log(i0 / last), "ln(I0/I)"
        elif len(chans) > 1:
            y, lab = last / i0, f"{chans[-1]} / {chans[0]}"
        else:
            y, lab = i0, chans[0]
    return Preview(x=x, y=np.nan_to_num(y), x_label="energy (eV)", y_label=lab, title=title)
