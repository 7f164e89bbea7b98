"""An RDE invoice checked as rdetoolkit checks it, for both sides: the sample sheet on the PC and
``labedge rde-export`` at the facility must agree on what a valid invoice is."""
from __future__ import annotations

import copy
from typing import Any


def as_rdetoolkit_reads(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of an invoice schema as rdetoolkit reads it. The official schemas declare JSON Schema
    2020-12 but write sample attributes tuple-style (``items: [...]``); rdetoolkit reads that as
    ``prefixItems``, and 2020-12 validators crash on it (AttributeError) once an invoice carries the
    array."""
    out = copy.deepcopy(schema)
    sample = ((out.get("properties") or {}).get("sample") or {}) if isinstance(out, dict) else {}
    for part in ("generalAttributes", "specificAttributes"):
        arr = (sample.get("properties") or {}).get(part) if isinstance(sample, dict) else None
        if isinstance(arr, dict) and isinstance(arr.get("items"), list):
            items = arr.pop("items")
            if items:
                arr["prefixItems"] = items
    return out


def drop_none(x: Any) -> Any:
    """rdetoolkit drops null values before it validates an invoice (an empty sheet field is null)."""
    if isinstance(x, dict):
        return {k: drop_none(v) for k, v in x.items() if v is not None}
    if isinstance(x, list):
        return [drop_none(v) for v in x if v is not None]
    return x
