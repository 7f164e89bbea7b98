"""The receiver's record of which stored package supersedes which (a later version of the same files).

A device names the earlier packages in its bag's provenance (hashed, so verified with the bag)
and in the offer. The receiver appends one JSON line per stored package that names any, in
``<store>/<device>/supersedes.jsonl``: the facility side can then show the latest version and
hide or flag the earlier one. Append-only with O_APPEND: receivers of a share group may write
the same line twice; readers merge.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from agent.package.ids import PACKAGE_ID_RE
from agent.package.copying import write_fully

log = logging.getLogger(__name__)
LINKS_FILE = "supersedes.jsonl"
MAX_IDS = 64


def provenance_supersedes(bag: Path) -> list[str]:
    try:
        prov = json.loads((bag / "data" / "labedge" / "provenance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    ids = prov.get("supersedes") if isinstance(prov, dict) else None
    if not isinstance(ids, list):
        return []
    return [i for i in ids if isinstance(i, str) and PACKAGE_ID_RE.match(i)][:MAX_IDS]


def record_supersedes(store: Path, device: str, package_id: str, bag: Path, offered: tuple[str, ...]) -> list[str]:
    """Record the links of a just-stored package; returns the ids linked (from the verified bag)."""
    ids = provenance_supersedes(bag)
    if sorted(ids) != sorted(offered):
        log.warning("%s/%s: the offer's supersedes %s differs from its provenance %s; the provenance is kept",
                    device, package_id, list(offered), ids)
    if not ids:
        return []
    line = json.dumps({"package_id": package_id, "supersedes": ids, "recorded_at": round(time.time(), 3)}) + "\n"
    path = store / device / LINKS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o640)
    try:
        write_fully(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    log.info("%s/%s supersedes %s", device, package_id, ", ".join(ids))
    return ids


def superseded_by(store: Path, device: str) -> dict[str, str]:
    """earlier package id -> the id of the package that supersedes it (the latest recorded)."""
    out: dict[str, str] = {}
    try:
        lines = (store / device / LINKS_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            rec = json.loads(line)
            for old in rec["supersedes"]:
                out[str(old)] = str(rec["package_id"])
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line after a crash
    return out
