"""Start-up repair after a crash: nothing half-built stays, nothing built is forgotten."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from agent.package.builder import Spool
from agent.package.ids import is_package_id
from agent.state.store import FileRecord, StateStore

log = logging.getLogger(__name__)


def recover(spool: Spool, store: StateStore, *, delete_delivered: bool = True) -> dict[str, int]:
    """Clear temp builds, re-register complete packages the DB missed, requeue interrupted uploads.

    A package is renamed into ``packages/`` only when complete, but the process can die between
    that rename and the DB commit; its provenance has everything needed to record it.
    """
    spool.ensure()
    cleared = spool.clear_tmp()
    known = store.package_ids()
    delivered = {p.id for p in store.list_packages("delivered", limit=10**9)}
    # killed between superseding a package and freeing its space: it never leaves the PC
    delivered |= {p.id for p in store.list_packages("superseded", limit=10**9)}
    adopted = released = 0
    for d in sorted(spool.packages.iterdir()):
        if d.name in delivered and (delete_delivered or store.superseded_by(d.name)):
            spool.release(d.name)  # killed after the ack was recorded, before the copy was freed
            released += 1
            continue
        if not d.is_dir() or not is_package_id(d.name) or d.name in known:
            continue
        try:
            prov = json.loads((d / "data/labedge/provenance.json").read_text(encoding="utf-8"))
            files = [FileRecord(s["path"], int(s["size"]), int(s["mtime_ns"]), s["sha256"]) for s in prov["sources"]]
            nbytes = sum(p.stat().st_size for p in (d / "data").rglob("*") if p.is_file())
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("spool entry %s is not a readable package (%s); moved aside", d, exc)
            d.rename(spool.root / f"damaged-{d.name}")
            continue
        store.add_package(package_id=d.name, instrument_id=prov.get("instrument_id", "?"), path=str(d),
                          nbytes=nbytes, files=files, pairing=prov.get("pairing"), translation=prov.get("translation"),
                          kind=prov.get("kind", "measurement"), parent_id=prov.get("parent_id"),
                          supersede=[i for i in prov.get("supersedes") or [] if isinstance(i, str)])
        adopted += 1
    requeued = store.recover_interrupted()
    if cleared or adopted or requeued or released:
        log.info("recovery: %d half-built package(s) removed, %d package(s) re-registered, %d upload(s) "
                 "requeued, %d delivered package(s) released", cleared, adopted, requeued, released)
    return {"cleared": cleared, "adopted": adopted, "requeued": requeued, "released": released}
