"""nims-xps-vamas: the RDE_XPS ``scienta_omicron`` template (ISO 14976 VAMAS files).

Terms are VAMAS field names in snake case; the header goes to ``constant``, each block to one
``variable`` row. Values are the file's text, as the official program writes them.

Deliberately not copied from the official program (docs/rde.md):
- ``xray_power`` (W) is the analysis source strength, not the characteristic energy in eV;
- ``abscissa_end`` counts the points of one ordinate variable, not the values of all of them;
- IRREGULAR and multi-variable files are accepted (the official reader fails on IRREGULAR).
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from translators.profiles import Profile, entry
from translators.writer import ValueRejected, coerce

#: official originalName -> labedge's VAMAS key, where they are not the same words
_RENAMED = {"year_in_full": "year", "day_of_month": "day"}


def _text(v: Any) -> str:
    if isinstance(v, list):
        return ",".join(_text(x) for x in v)
    return "" if v is None else str(v)


def _end(block: dict[str, Any]) -> str | None:
    """Last abscissa value: start + increment * (points - 1), in the file's own decimals."""
    try:
        start, inc = Decimal(str(block["abscissa start"])), Decimal(str(block["abscissa increment"]))
        n_vars = max(1, len(block.get("corresponding variables") or []))
        points = int(block.get("number of points") or int(block["number of ordinate values"]) // n_vars)
    except (KeyError, ValueError, TypeError, InvalidOperation):
        return None
    return str(start + inc * (points - 1))


def _computed(block: dict[str, Any]) -> dict[str, str | None]:
    comment = block.get("block comment") or []
    cvars = block.get("corresponding variables") or []
    return {
        "number_of_lines_in_block_comment": str(len(comment)),
        "block_comment": "\n".join(str(c).rstrip() for c in comment),
        "values_of_experimental_variables": _text(block.get("experimental variable values") or []),
        "abscissa_end": _end(block),
        "abscissa_label": f"{block.get('abscissa label', '')} ({block.get('abscissa units', '')})",
        "corresponding_variables_label": (",".join(str(c[0]) for c in cvars) + " ("
                                          + ",".join(str(c[1]) for c in cvars if len(c) > 1) + ")") if cvars else None,
        # the official program writes the source energy (eV) into this W term; the power is the strength
        "xray_power": _text(block.get("analysis source strength")) or None,
    }


def _lookup(src: dict[str, Any], orig: str) -> Any:
    key = _RENAMED.get(orig, orig).replace("_", " ")
    return src.get(key)


def build(original: dict[str, Any], template: dict[str, Any], data_dir: Path) -> tuple[dict[str, Any], list[str]]:
    header = dict(original.get("header") or {})
    header["comment"] = "\n".join(str(c).rstrip() for c in original.get("comment") or [])
    blocks = list(original.get("blocks") or [])
    warnings: list[str] = []
    constant: dict[str, Any] = {}
    rows: list[dict[str, Any]] = [{} for _ in blocks]
    for key, term in template.items():
        orig = term.get("originalName")
        for i, block in (enumerate(blocks) if term.get("variable") else [(-1, None)]):
            if block is None:
                raw = header.get("comment") if key == "comment" else _lookup(header, orig) if orig else None
            else:
                comp = _computed(block)
                raw = comp[key] if key in comp else _lookup(block, orig) if orig else None
            if raw is None or _text(raw) == "":
                continue  # an empty field is absent, as in the official outputs
            try:
                value = coerce(_text(raw) if key in ("comment", "block_comment") else _text(raw).strip(), term["schema"])
            except (ValueRejected, ValueError, TypeError) as exc:
                warnings.append(f"{key}: {exc}; left out")
                continue
            (rows[i] if block is not None else constant)[key] = entry(value, term)
    return {"constant": constant, "variable": [r for r in rows if r]}, warnings


PROFILES = (Profile("nims-xps-vamas", ("vamas",), "RDE_XPS", "template/scienta_omicron/tasksupport", build),)
