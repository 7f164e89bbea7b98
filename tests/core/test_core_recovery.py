"""Start-up recovery: every state a crash can leave in the spool is tidied without losing a package."""
from __future__ import annotations

import time
from pathlib import Path

from agent.measurement import Measurement, SourceFile
from agent.package.builder import BuildContext, Spool, build_package
from agent.pairing import UNPAIRED, Pairing, minimal_invoice, MINIMAL_SCHEMA
from agent.recovery import recover
from agent.state.store import StateStore


def _built(tmp_path: Path, spool: Spool, name: str):
    src = tmp_path / "watch" / name
    src.parent.mkdir(exist_ok=True)
    src.write_bytes(name.encode() * 100)
    st = src.stat()
    m = Measurement("xrd", str(src), [SourceFile(src, name, st.st_size, st.st_mtime_ns)], time.time(), src.parent)
    return build_package(spool, m, Pairing(UNPAIRED, minimal_invoice(m), MINIMAL_SCHEMA), BuildContext("pc"),
                         translator=None)


def test_recovery_tidies_every_crash_leftover(tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.ensure()
    store = StateStore(tmp_path / "state.db")
    try:
        delivered = _built(tmp_path, spool, "a.dat")   # acked, killed before its copy was freed
        store.add_package(package_id=delivered.id, instrument_id="xrd", path=str(delivered.path),
                          nbytes=delivered.nbytes, files=delivered.files)
        store.set_state(delivered.id, "delivered")
        orphan = _built(tmp_path, spool, "b.dat")      # renamed into place, killed before the DB commit
        uploading = _built(tmp_path, spool, "c.dat")   # killed mid-upload
        store.add_package(package_id=uploading.id, instrument_id="xrd", path=str(uploading.path),
                          nbytes=uploading.nbytes, files=uploading.files)
        store.set_state(uploading.id, "uploading")
        (spool.tmp / "20261122T000000000Z-deadbeef" / "data").mkdir(parents=True)  # half-built

        got = recover(spool, store)

        assert got == {"cleared": 1, "adopted": 1, "requeued": 1, "released": 1}
        assert not delivered.path.exists()
        assert store.package(orphan.id).state == "queued"
        assert store.is_packaged(str(tmp_path / "watch" / "b.dat"), orphan.files[0].size, orphan.files[0].mtime_ns)
        assert store.package(uploading.id).state == "queued"
        assert not any(spool.tmp.iterdir())
        assert recover(spool, store) == {"cleared": 0, "adopted": 0, "requeued": 0, "released": 0}
    finally:
        store.close()
