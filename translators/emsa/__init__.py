"""EMSA/MAS spectral data files (ISO 22029; ``.msa``/``.emsa``/``.txt``), EDS and EELS.

Read by label: every ``#KEYWORD -unit: value`` line is kept verbatim (the keyword's unit, if
the file states one, converts the value into the vocabulary's unit or keeps it out with a
warning), vendor ``##`` keywords (EDAX, Oxford) are kept and the known ones mapped, a repeated
keyword keeps all its values, and the data block is ``Y`` or ``XY`` with ``NCOLUMNS`` values a
line, ending at ``#ENDOFDATA`` (anything after it, such as trailing bytes, is ignored).
"""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators import progress
from translators.common import best_score, num, require_file, text
from translators.contract import CorruptFile, Preview, Table, TranslationResult, load_vocabulary
from translators.mapping import MappingError, convert_unit
from translators.safeio import decode_text, read_bytes, read_head

MAX_BYTES = 256 << 20
_KEY = re.compile(r"^#(#?)\s*([^:]*?)\s*:\s?(.*)$")
_UNIT_IN_KEY = re.compile(r"^(.*?)\s*-\s*([A-Za-z%/]+)$")          # "BEAMKV   -kV"
_UNIT_IN_PARENS = re.compile(r"^(.*?)\s*\(([^)]*)\)\s*$")           # "AmpTime (usec)"
_UNITS = {"ev": "eV", "kev": "keV", "kv": "kV", "s": "s", "sec": "s", "ms": "ms", "dg": "deg", "deg": "deg",
          "usec": "us", "us": "us", "cm": "cm", "mm": "mm", "um": "um", "nm": "nm", "na": "nA", "ua": "uA",
          "sr": "sr", "mr": "mrad", "mrad": "mrad"}
_EXTRA_FACTORS = {("keV", "eV"): 1e3, ("eV", "keV"): 1e-3, ("kV", "kV"): 1.0, ("us", "us"): 1.0,
                  ("ms", "us"): 1e3, ("mrad", "mrad"): 1.0, ("nm", "cm"): 1e-7, ("um", "cm"): 1e-4,
                  ("mm", "cm"): 0.1, ("pA", "nA"): 1e-3}


def _is_emsa(p: Path) -> bool:
    head = read_head(p, 512).lstrip(b"\xef\xbb\xbf\r\n\t ")
    return head.upper().startswith(b"#FORMAT") and b"EMSA" in head[:200].upper()


def _unit(u: str) -> str:
    return _UNITS.get(u.strip().lower(), u.strip())


def parse_header(lines: list[str]) -> tuple[list[tuple[str, str, str | None, bool]], int]:
    """(keyword, value, unit, vendor) per header line, and the index of the first data line."""
    out = []
    for i, line in enumerate(lines):
        s = line.strip()
        if not s:
            continue
        m = _KEY.match(s)
        if not m:
            return out, i
        vendor, key, value = bool(m.group(1)), m.group(2).strip(), m.group(3).strip()
        um = _UNIT_IN_PARENS.match(key) if vendor else _UNIT_IN_KEY.match(key)
        if um and vendor and um.group(2).strip().lower() not in _UNITS:
            um = None  # "RESO (MnKa)": a qualifier, not a unit
        name, unit = (um.group(1).strip(), _unit(um.group(2))) if um else (key, None)
        out.append((name.upper() if not vendor else name, value, unit, vendor))
        if not vendor and name.upper() == "SPECTRUM":
            return out, i + 1
    return out, len(lines)


def _data(lines: list[str], start: int, name: str, warnings: list[str]) -> np.ndarray:
    values: list[float] = []
    bad = 0
    for line in lines[start:]:
        s = line.strip()
        if s.startswith("#"):
            break  # #ENDOFDATA (or a checksum line): what follows is not spectrum
        for tok in re.split(r"[,\s;]+", s):
            if tok:
                try:
                    values.append(float(tok))
                except ValueError:
                    bad += 1
    if bad:
        warnings.append(f"{name}: {bad} data value(s) are not numbers and were skipped")
    return np.asarray(values, dtype=float)


class EmsaTranslator:
    name = "emsa"
    version = "1.0.0"
    description = "EMSA/MAS spectral data (.msa, .emsa): EDS/EELS spectra with vendor ## keywords"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        return best_score(paths, lambda p: 0.95 if _is_emsa(p) else 0.0)

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        path = require_file(paths, _is_emsa, "no EMSA/MAS file (first keyword must be #FORMAT : EMSA/MAS...)")
        data = read_bytes(path, MAX_BYTES)
        txt, _ = decode_text(data, where=path.name)
        lines = txt.lstrip("\ufeff").splitlines()
        header, start = parse_header(lines)
        warnings: list[str] = []
        original: dict[str, Any] = {}
        units: dict[str, str | None] = {}
        for key, value, unit, vendor in header:
            label = ("##" if vendor else "#") + key
            if label in original:  # a repeated keyword (several #COMMENT lines): keep every value
                prev = original[label]
                original[label] = (prev if isinstance(prev, list) else [prev]) + [value]
            else:
                original[label] = value
            if unit:
                original[label + "@unit"] = unit
                units[label] = unit
        if "#FORMAT" not in original:
            raise CorruptFile(f"{path.name}: no #FORMAT keyword")
        vocab = self.vocabulary()
        const, used = self._map(original, units, vocab, path.name, warnings)
        progress.header_read(original, const)
        ydata = _data(lines, start, path.name, warnings)
        ncol = max(1, int(num(original.get("#NCOLUMNS")) or 1))
        xy = str(original.get("#DATATYPE", "Y")).strip().upper() == "XY"
        per = num(original.get("#XPERCHAN")) or 1.0
        off = num(original.get("#OFFSET")) or 0.0
        xunit = self._x_unit(str(original.get("#XUNITS", "")))
        if xy:
            if len(ydata) % 2:
                warnings.append(f"{path.name}: odd number of XY values; the last one is ignored")
                ydata = ydata[:-1]
            x, y = ydata[0::2], ydata[1::2]
        else:
            y = ydata
            x = off + per * np.arange(len(y) // ncol if ncol > 1 else len(y))
            if ncol > 1:
                y = y[: len(x) * ncol].reshape(-1, ncol)[:, 0]
        npts = num(original.get("#NPOINTS"))
        if npts is not None and int(npts) != len(y):
            warnings.append(f"{path.name}: #NPOINTS says {int(npts)} points, the data block holds {len(y)}")
        if not len(y):
            warnings.append(f"{path.name}: no spectrum data after the header")
        ylabel = text(original.get("#YUNITS")) or "counts"
        xname = "energy" if not xunit or xunit in ("eV", "keV") else "x"
        tables = [Table(path.stem, {xname: x, "intensity": y}, {xname: xunit, "intensity": ylabel})] if len(y) else []
        preview = Preview(x=x, y=y, x_label=f"{xname} ({xunit or '-'})", y_label=ylabel,
                          title=text(original.get("#TITLE")) or path.stem) if len(y) > 1 else None
        return TranslationResult(constant=const, original=original, tables=tables, preview=preview,
                                 warnings=warnings, used_keys=sorted(used), stem=path.stem)

    @staticmethod
    def _x_unit(xunits: str) -> str | None:
        m = re.search(r"\(([^)]*)\)", xunits)  # "Energy (EV)"
        u = (m.group(1) if m else xunits).strip()
        return _unit(u) if u else None

    def _map(self, original: dict[str, Any], units: dict[str, str | None], vocab: dict[str, Any],
             name: str, warnings: list[str]) -> tuple[dict[str, Any], set[str]]:
        const: dict[str, Any] = {}
        used: set[str] = set()
        x_unit = self._x_unit(str(original.get("#XUNITS", ""))) or "eV"
        for key, term in vocab.items():
            names = [term["originalName"], *(term.get("labedge") or {}).get("alt", [])]
            if key == "acquisition_date":
                value = self._date(original, warnings, name)
                if value:
                    const[key] = value
                    used |= {"#DATE", "#TIME"}
                continue
            label = next((k for n in names for k in original
                          if not k.endswith("@unit") and k.upper() == n.upper()), None)
            if label is None:
                continue
            raw = original[label]
            value: Any = raw[0] if isinstance(raw, list) and term["schema"]["type"] != "string" else raw
            if isinstance(value, list):
                value = "; ".join(value)
            used.add(label)
            if term["schema"]["type"] in ("number", "integer"):
                f = num(value)
                if f is None:
                    const[key] = value  # the writer keeps it verbatim in the report, status partial
                    continue
                stated = units.get(label) or (x_unit if key in ("energy_per_channel", "energy_offset") else None)
                if stated and term.get("unit") and stated != term["unit"]:
                    used.add(label + "@unit")
                    try:
                        f = _convert(f, stated, term["unit"])
                    except MappingError as exc:
                        warnings.append(f"{name}: {label} = {value} {stated}: {exc}; kept only in original_metadata.json")
                        continue
                elif stated:
                    used.add(label + "@unit")
                const[key] = f
            else:
                const[key] = text(value)
        return {k: v for k, v in const.items() if v is not None}, used

    @staticmethod
    def _date(original: dict[str, Any], warnings: list[str], name: str) -> str | None:
        d, t = text(original.get("#DATE")), text(original.get("#TIME")) or "00:00"
        if not d:
            return None
        for fmt in ("%d-%b-%Y %H:%M:%S", "%d-%b-%Y %H:%M", "%d-%b-%y %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
            try:
                return datetime.strptime(f"{d} {t}", fmt).isoformat()
            except ValueError:
                continue
        warnings.append(f"{name}: #DATE {d!r} #TIME {t!r} is not a date in the EMSA form DD-MMM-YYYY HH:MM; "
                        "kept verbatim in original_metadata.json")
        return None


def _convert(value: float, from_unit: str, to_unit: str) -> float:
    f = _EXTRA_FACTORS.get((from_unit, to_unit))
    if f is not None:
        return value * f
    return float(convert_unit(value, from_unit, to_unit))
