"""ISO 14976 (VAMAS) reader: positional text, one value per line.

The meaning of each line depends on the experiment mode, the scan mode, the technique and
the parameter inclusion list, so the reader walks the standard's grammar step by step with
a cursor that names the file, line and field in every error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from translators.safeio import decode_text as _detect_text
from translators.contract import CorruptFile, UnsupportedFile

MAGIC = "VAMAS Surface Chemical Analysis Standard Data Transfer Format 1988 May 4"
EXP_MODES = ("MAP", "MAPDP", "MAPSV", "MAPSVDP", "NORM", "SDP", "SDPSV", "SEM", "NOEXP")
SCAN_MODES = ("REGULAR", "IRREGULAR", "MAPPING")
# Techniques whose blocks carry the sputtering ion/atom lines (parameter 13).
_ION_TECHS = ("FABMS", "FABMS energy spec", "ISS", "SIMS", "SIMS energy spec", "SNMS",
              "SNMS energy spec")
_SPUTTER_TECHS = ("AES diff", "AES dir", "EDX", "ELS", "UPS", "XPS", "XRF")
_DP_MODES = ("MAPDP", "MAPSVDP", "SDP", "SDPSV")
#: ISO 14976 says 1E37 means "no value".
UNKNOWN = 1e37
MAX_COUNT = 50_000_000  # sanity cap on any declared count, checked before allocating


@dataclass
class VamasBlock:
    fields: dict[str, Any] = field(default_factory=dict)  # ISO field name -> raw string(s)
    comment: list[str] = field(default_factory=list)
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    units: dict[str, str | None] = field(default_factory=dict)
    abscissa: str = ""


@dataclass
class VamasFile:
    header: dict[str, Any]
    comment: list[str]
    exp_vars: list[tuple[str, str]]
    blocks: list[VamasBlock]
    warnings: list[str]


class _Cursor:
    """Line-by-line reader; every failure names file, line and the field being read."""

    def __init__(self, path: Path, lines: list[str]) -> None:
        self.path, self.lines, self.i = path, lines, 0

    def remaining(self) -> int:
        return len(self.lines) - self.i

    def str(self, what: str) -> str:
        if self.i >= len(self.lines):
            raise CorruptFile(f"{self.path.name}: file ends at line {self.i} while reading "
                              f"'{what}' (truncated VAMAS file)")
        s = self.lines[self.i].strip()
        self.i += 1
        return s

    def raw(self, what: str) -> str:
        s = self.str(what)  # bounds check
        return self.lines[self.i - 1].rstrip("\r\n")

    def int(self, what: str, lo: int = 0, hi: int = MAX_COUNT) -> int:
        s = self.str(what)
        try:
            v = int(s)
        except ValueError:
            try:
                fv = float(s)
                v = int(fv) if fv.is_integer() else int("x")
            except (ValueError, OverflowError):
                raise CorruptFile(f"{self.path.name}: line {self.i}: '{what}' must be an "
                                  f"integer, found {s[:40]!r}") from None
        if not lo <= v <= hi:
            raise CorruptFile(f"{self.path.name}: line {self.i}: '{what}' = {v} is outside "
                              f"the allowed range {lo}..{hi}")
        return v

    def float(self, what: str) -> float:
        s = self.str(what)
        try:
            return float(s)
        except ValueError:
            raise CorruptFile(f"{self.path.name}: line {self.i}: '{what}' must be a number, "
                              f"found {s[:40]!r}") from None

    def fail(self, msg: str) -> CorruptFile:
        return CorruptFile(f"{self.path.name}: line {self.i}: {msg}")


def read_vamas(path: Path, max_bytes: int = 512 * 1024 * 1024) -> VamasFile:
    size = path.stat().st_size
    if size > max_bytes:
        raise CorruptFile(f"{path.name}: {size} bytes is larger than the {max_bytes} byte "
                          "limit for a VAMAS text file")
    # ISO 14976 is ASCII, but comments carry vendor text (a Japanese operator, a French lab)
    text = _detect_text(path.read_bytes(), where=path.name)[0].lstrip("\ufeff")
    lines = text.splitlines()
    blank = 0
    while blank < len(lines) and not lines[blank].strip():
        blank += 1  # blank lines before the identifier (Kratos ESCApe): skipped
    lines = lines[blank:]
    if not lines or lines[0].strip() != MAGIC:
        raise UnsupportedFile(f"{path.name}: first line is not the VAMAS format identifier")
    c = _Cursor(path, lines)
    c.str("format identifier")
    h: dict[str, Any] = {}
    for key in ("institution identifier", "instrument model identifier",
                "operator identifier", "experiment identifier"):
        h[key] = c.str(key)
    n = c.int("number of lines in comment", hi=c.remaining())
    comment = [c.raw("comment line") for _ in range(n)]
    mode = c.str("experiment mode")
    if mode not in EXP_MODES:
        raise c.fail(f"experiment mode {mode!r} is not one of {', '.join(EXP_MODES)}")
    scan = c.str("scan mode")
    if scan not in SCAN_MODES:
        raise c.fail(f"scan mode {scan!r} is not one of {', '.join(SCAN_MODES)}")
    h["experiment mode"], h["scan mode"] = mode, scan
    if mode in ("MAP", "MAPDP", "NORM", "SDP"):
        h["number of spectral regions"] = c.int("number of spectral regions")
    if mode in ("MAP", "MAPDP"):
        h["number of analysis positions"] = c.int("number of analysis positions")
        h["number of discrete x coordinates available in full map"] = c.int("number of x coordinates")
        h["number of discrete y coordinates available in full map"] = c.int("number of y coordinates")
    nvar = c.int("number of experimental variables", hi=c.remaining())
    exp_vars = [(c.str("experimental variable label"), c.str("experimental variable units"))
                for _ in range(nvar)]
    ninc = c.int("number of entries in parameter inclusion or exclusion list", lo=-40, hi=40)
    listed = {c.int("parameter inclusion or exclusion number", lo=1, hi=40)
              for _ in range(abs(ninc))}
    # Positive count: only listed parameters appear in later blocks; negative: listed are left out.
    include = {p: (p in listed) if ninc > 0 else (p not in listed) for p in range(1, 41)}
    nman = c.int("number of manually entered items in block", hi=c.remaining())
    h["manually entered items"] = [c.str("manually entered item") for _ in range(nman)]
    n_exp_fue = c.int("number of future upgrade experiment entries", hi=c.remaining())
    n_blk_fue = c.int("number of future upgrade block entries", hi=1000)
    h["future upgrade experiment entries"] = [c.str("future upgrade experiment entry")
                                              for _ in range(n_exp_fue)]
    nblocks = c.int("number of blocks", hi=c.remaining())
    h["number of blocks"] = nblocks
    warnings: list[str] = []
    blocks: list[VamasBlock] = []
    for b in range(nblocks):
        inc = {p: True for p in range(1, 41)} if b == 0 else include
        first = blocks[0].fields if blocks else {}
        blocks.append(_read_block(c, b + 1, mode, scan, len(exp_vars), n_blk_fue, inc, first,
                                  warnings))
    if c.remaining() and any(s.strip() for s in lines[c.i:]):
        if lines[c.i].strip() != "end of experiment":
            warnings.append(f"{path.name}: {c.remaining()} unexpected line(s) after the last block")
    return VamasFile(h, comment, exp_vars, blocks, warnings)


def _read_block(c: _Cursor, no: int, mode: str, scan: str, nvar: int, n_fue: int,
                inc: dict[int, bool], first: dict[str, Any], warnings: list[str]) -> VamasBlock:
    blk = VamasBlock()
    f = blk.fields

    def take(param: int, key: str, reader) -> None:
        # Excluded parameters repeat the first block's value (ISO 14976 inclusion list).
        if inc[param]:
            f[key] = reader(f"block {no}: {key}")
        elif key in first:
            f[key] = first[key]

    f["block identifier"] = c.str(f"block {no}: block identifier")
    f["sample identifier"] = c.str(f"block {no}: sample identifier")
    for p, key in enumerate(("year", "month", "day", "hours", "minutes", "seconds",
                             "number of hours in advance of Greenwich Mean Time"), start=1):
        take(p, key, c.str)
    if inc[8]:
        n = c.int(f"block {no}: number of lines in block comment", hi=c.remaining())
        blk.comment = [c.raw(f"block {no}: comment line") for _ in range(n)]
    take(9, "technique", c.str)
    tech = f.get("technique", "")
    if mode in ("MAP", "MAPDP"):
        take(10, "x coordinate", c.str)
        take(10, "y coordinate", c.str)
    if inc[11]:
        f["experimental variable values"] = [c.str(f"block {no}: experimental variable value")
                                             for _ in range(nvar)]
    elif "experimental variable values" in first:
        f["experimental variable values"] = first["experimental variable values"]
    take(12, "analysis source label", c.str)
    if mode in _DP_MODES or tech in _ION_TECHS:
        for key in ("sputtering ion or atom atomic number",
                    "number of atoms in sputtering ion or atom particle",
                    "sputtering ion or atom charge sign and number"):
            take(13, key, c.str)
    take(14, "analysis source characteristic energy", c.str)
    take(15, "analysis source strength", c.str)
    take(16, "analysis source beam width x", c.str)
    take(16, "analysis source beam width y", c.str)
    if mode in ("MAP", "MAPDP", "MAPSV", "MAPSVDP", "SEM"):
        take(17, "field of view x", c.str)
        take(17, "field of view y", c.str)
    if mode in ("MAPSV", "MAPSVDP", "SEM"):
        for key in ("first linescan start x coordinate", "first linescan start y coordinate",
                    "first linescan finish x coordinate", "first linescan finish y coordinate",
                    "last linescan finish x coordinate", "last linescan finish y coordinate"):
            take(18, key, c.str)
    take(19, "analysis source polar angle of incidence", c.str)
    take(20, "analysis source azimuth", c.str)
    take(21, "analyser mode", c.str)
    take(22, "analyser pass energy or retard ratio or mass resolution", c.str)
    if tech == "AES diff":
        take(23, "differential width", c.str)
    take(24, "magnification of analyser transfer lens", c.str)
    take(25, "analyser work function or acceptance energy of atom or ion", c.str)
    take(26, "target bias", c.str)
    take(27, "analysis width x", c.str)
    take(27, "analysis width y", c.str)
    take(28, "analyser axis take off polar angle", c.str)
    take(28, "analyser axis take off azimuth", c.str)
    take(29, "species label", c.str)
    take(30, "transition or charge state label", c.str)
    take(30, "charge of detected particle", c.str)
    if scan == "REGULAR":
        take(31, "abscissa label", c.str)
        take(31, "abscissa units", c.str)
        take(31, "abscissa start", c.str)
        take(31, "abscissa increment", c.str)
    if inc[32]:
        n = c.int(f"block {no}: number of corresponding variables", lo=1, hi=1000)
        f["corresponding variables"] = [(c.str(f"block {no}: corresponding variable label"),
                                         c.str(f"block {no}: corresponding variable units"))
                                        for _ in range(n)]
    elif "corresponding variables" in first:
        f["corresponding variables"] = first["corresponding variables"]
    else:
        raise c.fail(f"block {no}: no corresponding variables defined")
    take(33, "signal mode", c.str)
    take(34, "signal collection time", c.str)
    take(35, "number of scans to compile this block", c.str)
    take(36, "signal time correction", c.str)
    if tech in _SPUTTER_TECHS and mode in _DP_MODES:
        for key in ("sputtering source energy", "sputtering source beam current",
                    "sputtering source width x", "sputtering source width y",
                    "sputtering source polar angle of incidence", "sputtering source azimuth",
                    "sputtering mode"):
            take(37, key, c.str)
    take(38, "sample normal polar angle of tilt", c.str)
    take(38, "sample normal tilt azimuth", c.str)
    take(39, "sample rotation angle", c.str)
    if inc[40]:
        n = c.int(f"block {no}: number of additional numerical parameters", hi=c.remaining())
        f["additional numerical parameters"] = [
            (c.str(f"block {no}: parameter label"), c.str(f"block {no}: parameter units"),
             c.str(f"block {no}: parameter value")) for _ in range(n)]
    elif "additional numerical parameters" in first:
        f["additional numerical parameters"] = first["additional numerical parameters"]
    f["future upgrade block entries"] = [c.str(f"block {no}: future upgrade block entry")
                                         for _ in range(n_fue)]
    _read_values(c, no, scan, blk)
    return blk


def _read_values(c: _Cursor, no: int, scan: str, blk: VamasBlock) -> None:
    f = blk.fields
    cvars = f["corresponding variables"]
    nvals = c.int(f"block {no}: number of ordinate values", hi=MAX_COUNT)
    ncv = len(cvars)
    # Check the declared count against what the file can hold before allocating anything.
    if nvals + 2 * ncv > c.remaining():
        raise c.fail(f"block {no}: declares {nvals} ordinate values but only "
                     f"{c.remaining()} lines remain (truncated file)")
    if nvals % ncv:
        raise c.fail(f"block {no}: {nvals} ordinate values do not divide into "
                     f"{ncv} corresponding variables")
    f["number of ordinate values"] = nvals
    f["ordinate ranges"] = [(c.str(f"block {no}: minimum ordinate value"),
                             c.str(f"block {no}: maximum ordinate value")) for _ in range(ncv)]
    start_line = c.i
    try:
        vals = np.array(c.lines[c.i:c.i + nvals], dtype=float)
    except ValueError:
        for k, s in enumerate(c.lines[c.i:c.i + nvals]):
            try:
                float(s)
            except ValueError:
                raise CorruptFile(f"{c.path.name}: line {start_line + k + 1}: block {no}: "
                                  f"ordinate value must be a number, found {s.strip()[:40]!r}") from None
        raise
    c.i += nvals
    table = vals.reshape(-1, ncv)
    npts = table.shape[0]
    f["number of points"] = npts
    if scan == "REGULAR":
        start = _num(f.get("abscissa start"))
        step = _num(f.get("abscissa increment"))
        label = f.get("abscissa label") or "abscissa"
        if start is None or step is None:
            raise c.fail(f"block {no}: abscissa start/increment missing or not a number")
        # Round away float noise from start + i*step (values are given to ~6 digits).
        blk.columns[label] = np.round(start + step * np.arange(npts), 9)
        blk.units[label] = _unit(f.get("abscissa units"))
        blk.abscissa = label
        for j, (lab, unit) in enumerate(cvars):
            name = _unique(lab or f"variable {j + 1}", blk.columns)
            blk.columns[name] = table[:, j]
            blk.units[name] = _unit(unit)
    else:
        # IRREGULAR (and MAPPING): the first corresponding variable is the abscissa.
        for j, (lab, unit) in enumerate(cvars):
            name = _unique(lab or f"variable {j + 1}", blk.columns)
            blk.columns[name] = table[:, j]
            blk.units[name] = _unit(unit)
            if j == 0:
                blk.abscissa = name
                f.setdefault("abscissa label", lab)
                f.setdefault("abscissa units", unit)


def _unique(name: str, seen: dict[str, Any]) -> str:
    out, k = name, 2
    while out in seen:
        out, k = f"{name} ({k})", k + 1
    return out


def _unit(u: Any) -> str | None:
    # VAMAS writes "d" for dimensionless and "n" for none.
    u = (u or "").strip()
    return None if u in ("", "d", "n") else u


def _num(s: Any) -> float | None:
    """A number, or None for blanks, text and ISO 14976's 1E37 'no value' marker."""
    try:
        v = float(s)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(v) or abs(v) >= UNKNOWN * 0.999:
        return None
    return v
