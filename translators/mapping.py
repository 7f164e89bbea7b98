"""Apply a vocabulary table to a flat dict of vendor keys: the mapping is data, not code.

Each ``metadata-def.json`` entry names its vendor key in ``originalName``. An optional
``labedge`` object in the entry (stripped from the copy written to the package) adds:

* ``parse``: how to read the vendor text (``datetime`` for the many vendor date styles,
  ``first_number`` for values like ``"40 kV"``);
* ``unitFrom``: the vendor key that holds the unit of this value; if it differs from the
  vocabulary's ``unit`` the value is converted when the conversion is known, else dropped
  with a warning (a number in the wrong unit is worse than no number);
* ``alt``: further vendor keys tried in order when ``originalName`` is absent.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

from translators import progress

_DT_FORMATS = ("%m/%d/%Y %H:%M:%S", "%m/%d/%y %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S",
               "%m/%d/%Y %H:%M", "%m/%d/%y %H:%M", "%Y-%m-%d", "%m/%d/%y", "%m/%d/%Y", "%d-%b-%Y %H:%M:%S")
_NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")

# factor to multiply a value in unit A to get unit B
_UNIT_FACTORS: dict[tuple[str, str], float] = {
    ("V", "kV"): 1e-3, ("kV", "V"): 1e3, ("A", "mA"): 1e3, ("mA", "A"): 1e-3, ("uA", "mA"): 1e-3,
    ("nm", "Angstrom"): 10.0, ("Angstrom", "nm"): 0.1, ("A", "Angstrom"): 1.0, ("Å", "Angstrom"): 1.0,
    ("deg/sec", "deg/min"): 60.0, ("deg/s", "deg/min"): 60.0, ("°", "deg"): 1.0, ("degree", "deg"): 1.0,
    ("C", "degC"): 1.0, ("℃", "degC"): 1.0, ("sec", "s"): 1.0, ("seconds", "s"): 1.0, ("ms", "s"): 1e-3, ("min", "s"): 60.0,
    ("um", "mm"): 1e-3, ("µm", "mm"): 1e-3, ("m", "mm"): 1e3, ("cm", "mm"): 10.0,
}


class MappingError(ValueError):
    """A vendor value could not be read as its vocabulary term asks."""


def parse_datetime(text: Any) -> str:
    """Vendor date/time text -> ISO 8601 (no timezone is invented when the file has none)."""
    s = str(text).strip()
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).isoformat()
    except ValueError:
        pass
    for fmt in _DT_FORMATS:
        try:
            return datetime.strptime(s, fmt).isoformat()
        except ValueError:
            continue
    raise MappingError(f"{s!r} is not a date/time in a known format")


def first_number(text: Any) -> float:
    m = _NUM.search(str(text))
    if not m:
        raise MappingError(f"{text!r} holds no number")
    return float(m.group(0))


PARSERS: dict[str, Callable[[Any], Any]] = {"datetime": parse_datetime, "first_number": first_number}


def convert_unit(value: Any, from_unit: str, to_unit: str) -> Any:
    f, t = from_unit.strip(), to_unit.strip()
    if f == t or not f:
        return value
    factor = _UNIT_FACTORS.get((f, t))
    if factor is None:
        raise MappingError(f"unit {from_unit!r} cannot be converted to {to_unit!r}")
    return float(value) * factor


def _present(v: Any) -> bool:
    return v is not None and not (isinstance(v, str) and not v.strip())


def apply_vocabulary(source: Mapping[str, Any], vocab: Mapping[str, Any], *,
                     variable: bool | None = None) -> tuple[dict[str, Any], list[str]]:
    """Values keyed by vocabulary key, for every term whose vendor key is present in ``source``.

    ``variable``: True -> only per-scan terms, False -> only constant terms, None -> all.
    """
    out: dict[str, Any] = {}
    warnings: list[str] = []
    used: list[str] = []
    suffixes: dict[str, str] | None = None
    for key, term in vocab.items():
        if variable is not None and bool(term.get("variable")) != variable:
            continue
        opts = term.get("labedge") or {}
        candidates = [term.get("originalName")] + list(opts.get("alt", []))
        orig = next((c for c in candidates if c and c in source and _present(source[c])), None)
        if orig is None:
            # XML-derived keys are paths: a vendor key may name the tail of the path only
            if suffixes is None:
                suffixes = _suffix_index(source)
            orig = next((suffixes[c] for c in candidates if c and c in suffixes
                         and _present(source[suffixes[c]])), None)
        if orig is None:
            continue
        value = source[orig]
        try:
            if opts.get("parse"):
                value = PARSERS[opts["parse"]](value)
            unit_key = opts.get("unitFrom")
            if unit_key and unit_key not in source:
                if suffixes is None:
                    suffixes = _suffix_index(source)
                unit_key = suffixes.get(unit_key, unit_key)
            if unit_key and term.get("unit") and _present(source.get(unit_key)):
                used.append(unit_key)
                value = convert_unit(value, str(source[unit_key]), term["unit"])
        except (MappingError, ValueError, TypeError) as exc:
            warnings.append(f"{orig}: {exc}; {key} left out (the value stays in original_metadata.json)")
            continue
        out[key] = value
        used.append(orig)
    # what a parser has mapped survives a later exception (see translators.progress)
    progress.mapped(source, out if variable is not True else {}, used)
    return out, warnings


def map_sources(sources: Sequence[Mapping[str, Any]], vocab: Mapping[str, Any]
                ) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """Constant terms from the first source, one row of per-scan terms per source, and warnings.

    For multi-scan files: each source is one scan's flat vendor keys (the file-wide keys
    merged in), so the file-wide settings come once and every scan keeps its own row.
    """
    constant, warnings = apply_vocabulary(sources[0], vocab, variable=False)
    variable = []
    for src in sources:
        row, w = apply_vocabulary(src, vocab, variable=True)
        warnings += w
        variable.append(row)
    return constant, variable, warnings


def _suffix_index(source: Mapping[str, Any]) -> dict[str, str]:
    """Every '/'-separated tail of every key -> the first full key that ends with it."""
    index: dict[str, str] = {}
    for full in source:
        parts = full.split("/")
        for i in range(1, len(parts)):
            index.setdefault("/".join(parts[i:]), full)
    return index


def public_vocabulary(vocab: Mapping[str, Any]) -> dict[str, Any]:
    """The vocabulary as written to ``tasksupport/metadata-def.json`` (our ``labedge`` hints removed)."""
    return {k: {kk: vv for kk, vv in v.items() if kk != "labedge"} for k, v in vocab.items()}
