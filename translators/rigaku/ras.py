"""Rigaku RAS text: ``*KEY "value"`` header blocks followed by numeric blocks.

One file may hold several scans (``*RAS_HEADER_START`` ... ``*RAS_INT_END`` repeated), and
optional extra blocks such as ``*RAS_TEMPERATURE_START`` (x, temperature). Headers are
Shift-JIS on Japanese Windows; newer software writes UTF-8.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from translators.contract import CorruptFile

_KV = re.compile(r'^\*([^\s"]+)\s*(?:"(.*)"|(.*))\s*$')


@dataclass
class RasScan:
    header: dict[str, str] = field(default_factory=dict)
    data: np.ndarray | None = None          # rows of x, intensity[, attenuation]
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. "temperature" -> (x, t) rows
    closed: bool = False


def _numeric_block(lines: list[str], where: str, warnings: list[str]) -> np.ndarray:
    rows: list[list[float]] = []
    bad = 0
    width = None
    for ln in lines:
        parts = ln.split()
        if not parts:
            continue
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            bad += 1
            continue
        if width is None:
            width = len(vals)
        if len(vals) != width:
            bad += 1
            continue
        rows.append(vals)
    if bad:
        warnings.append(f"{where}: {bad} line(s) were not numeric rows of {width or '?'} columns and were skipped")
    if not rows:
        return np.empty((0, width or 2))
    return np.asarray(rows, dtype=float)


def parse_ras(text: str, name: str) -> tuple[list[RasScan], list[str]]:
    """Scans of a RAS file and warnings; raise CorruptFile if it holds no RAS header at all."""
    warnings: list[str] = []
    scans: list[RasScan] = []
    cur: RasScan | None = None
    block: str | None = None   # "header", "INT", or an extra block name
    buf: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip().replace("\x00", "")
        if line.startswith("*RAS_") and (line.endswith("_START") or line.endswith("_END")):
            tag = line[5:]
            if tag == "HEADER_START":
                cur = RasScan()
                scans.append(cur)
                block = "header"
            elif tag == "HEADER_END":
                block = None
            elif tag.endswith("_START") and tag not in ("DATA_START",) and cur is not None:
                block, buf = tag[:-6], []
            elif tag.endswith("_END") and block and cur is not None and tag[:-4] == block:
                where = f"{name} scan {len(scans)} block {block}"
                arr = _numeric_block(buf, where, warnings)
                if block == "INT":
                    cur.data, cur.closed = arr, True
                else:
                    cur.extra[block.lower()] = arr
                block, buf = None, []
            continue
        if block == "header" and cur is not None:
            m = _KV.match(line)
            if m:
                key = "*" + m.group(1)
                value = m.group(2) if m.group(2) is not None else (m.group(3) or "").strip()
                if key in cur.header:  # a repeated key keeps every value: KEY, KEY#2, KEY#3 ...
                    n = 2
                    while f"{key}#{n}" in cur.header:
                        n += 1
                    cur.header[f"{key}#{n}"] = value
                else:
                    cur.header[key] = value
            elif line:
                warnings.append(f"{name} line {lineno}: not a *KEY \"value\" header line; skipped")
        elif block is not None:
            buf.append(line)
    if not scans or not any(s.header for s in scans):
        raise CorruptFile(f"{name}: no *RAS_HEADER_START block with *KEY \"value\" lines; not a Rigaku RAS file "
                          "or truncated before the header")
    if cur is not None and block is not None and block != "header":
        # truncated inside a numeric block: keep what we have
        where = f"{name} scan {len(scans)} block {block}"
        arr = _numeric_block(buf, where, warnings)
        if block == "INT":
            cur.data = arr
        warnings.append(f"{name}: scan {len(scans)} ends inside *RAS_{block}_START without *RAS_{block}_END; "
                        "the file looks truncated, the points read so far are kept")
    for i, s in enumerate(scans, 1):
        if s.data is None:
            warnings.append(f"{name}: scan {i} has no *RAS_INT_START data block")
            continue
        expected = s.header.get("*MEAS_DATA_COUNT")
        try:
            exp_n = int(float(expected)) if expected else None
        except ValueError:
            exp_n = None
        if exp_n is not None and exp_n != len(s.data):
            warnings.append(f"{name}: scan {i} has {len(s.data)} data points but *MEAS_DATA_COUNT says {exp_n}")
    return scans, warnings
