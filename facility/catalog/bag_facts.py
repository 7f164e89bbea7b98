"""What the catalog records about a stored package, read from its (already verified) bag.

The bag came from a device, so every field is treated as hostile: files are read only up to a
bound, bad JSON gives empty fields, and each value is cut to a length before it is stored."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_JSON_BYTES = 1 << 20
MAX_FIELD = 200


@dataclass(frozen=True)
class PackageFacts:
    instrument: str | None
    kind: str | None
    pairing: str | None
    sample: str | None
    proposal: str | None
    translation: str | None           # "ok" / "failed" / "none"
    translation_error: str | None
    files: int
    bytes: int


def _json(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_JSON_BYTES + 1)
        if len(data) > MAX_JSON_BYTES:
            return {}
        obj = json.loads(data.decode("utf-8"))
        return obj if isinstance(obj, dict) else {}
    except (OSError, ValueError):
        return {}


def _s(v: Any) -> str | None:
    return None if v is None else str(v)[:MAX_FIELD]


def _get(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        d = d.get(k) if isinstance(d, dict) else None  # type: ignore[assignment]
    return d


def read_facts(bag: Path, *, files: int, nbytes: int) -> PackageFacts:
    prov = _json(bag / "data" / "labedge" / "provenance.json")
    inv = _json(bag / "data" / "invoice" / "invoice.json")
    names = _get(inv, "sample", "names")
    sample = names[0] if isinstance(names, list) and names else _get(inv, "basic", "dataName")
    tr = prov.get("translation") if isinstance(prov.get("translation"), dict) else {}
    translation = None
    if tr:
        translation = "ok" if tr.get("ok") else ("none" if not tr.get("translator") else "failed")
    return PackageFacts(
        instrument=_s(prov.get("instrument_id")), kind=_s(prov.get("kind") or "measurement"),
        pairing=_s(_get(prov, "pairing", "status")), sample=_s(sample),
        proposal=_s(_get(inv, "basic", "experimentId")), translation=translation,
        translation_error=_s(tr.get("error")) if tr else None, files=files, bytes=nbytes)
