"""Files are picked up correctly: once, complete, after settling; at start-up; never temp files."""
from __future__ import annotations

import os
import socket

from core_helpers import (run_agent,  # noqa: F401 - fixture
                          db_files, db_packages, instrument, package_dirs, packages_with, provenance, sha256_of,
                          wait_for, write_config, write_slowly)

from agent.package.verify import verify_package


def _raw_of(spool, package_id, rel):
    return spool / "packages" / package_id / "data" / "raw" / rel


def test_slow_writer_is_packaged_once_and_complete(tmp_path, run_agent):
    watch = tmp_path / "watch"
    watch.mkdir()
    # settle 1.0 s, watcher tick 0.25 s: pauses of 0.4 s are seen by several polls, yet never
    # long enough for the file to count as settled while the writer is still at it.
    cfg = write_config(tmp_path, [instrument(watch, settle_seconds=1.0)])
    agent = run_agent(cfg)
    assert agent.watchers["xrd-1"].tick < 0.4 < 1.0
    target = watch / "scan_001.ras"
    chunks = [os.urandom(64 * 1024) for _ in range(10)]
    write_slowly(target, chunks, pause=0.4)
    # A sentinel written after the slow file: once it is packaged, every event of the slow
    # file has long been processed, so a late duplicate would already be visible.
    (watch / "sentinel.ras").write_bytes(b"sentinel")
    wait_for(lambda: packages_with(agent.cfg.state_db, watch / "sentinel.ras"), 30, "the sentinel's package")
    rows = packages_with(agent.cfg.state_db, target)
    assert len(rows) == 1, f"slow file packaged {len(rows)} times: {rows}"
    assert rows[0]["version"] == 1 and rows[0]["size"] == 10 * 64 * 1024
    raw = _raw_of(agent.cfg.spool_dir, rows[0]["package_id"], "scan_001.ras")
    assert sha256_of(raw) == sha256_of(target) == rows[0]["sha256"]
    assert verify_package(raw.parents[2]).ok


def test_catch_up_at_start_up_and_changed_files_become_new_versions(tmp_path, run_agent):
    watch = tmp_path / "watch"
    (watch / "day1").mkdir(parents=True)
    cfg = write_config(tmp_path, [instrument(watch)])
    db = tmp_path / "state" / "state.sqlite3"
    a = watch / "a.ras"
    a.write_bytes(b"first version of a\n")
    agent = run_agent(cfg)
    wait_for(lambda: packages_with(db, a), 30, "a.ras packaged")
    assert run_agent.stop(agent) == []

    # While the agent is down: new files (one in a subfolder) and a changed one.
    b, c = watch / "b.ras", watch / "day1" / "c.ras"
    b.write_bytes(b"b" * 1000)
    c.write_bytes(b"c" * 2000)
    unchanged = watch / "day1" / "d.ras"
    unchanged.write_bytes(b"d")
    agent = run_agent(cfg)
    wait_for(lambda: packages_with(db, b) and packages_with(db, c) and packages_with(db, unchanged), 30,
             "files written while the agent was stopped to be found at start-up")
    assert run_agent.stop(agent) == []
    n_before = len(db_packages(db))
    assert n_before == 4

    # Restart with nothing changed: nothing is re-packaged.
    agent = run_agent(cfg)
    w = agent.watchers["xrd-1"]
    wait_for(lambda: w.scans_done >= 1, 30, "the catch-up scan")
    a.write_bytes(b"second version of a, longer\n")   # changed after it was packaged
    wait_for(lambda: len(packages_with(db, a)) == 2, 30, "a.ras packaged again as version 2")
    rows = packages_with(db, a)
    assert [r["version"] for r in rows] == [1, 2]
    assert rows[0]["sha256"] != rows[1]["sha256"] == sha256_of(a)
    assert rows[0]["package_id"] != rows[1]["package_id"]
    # b, c, d untouched: still exactly one package each, and only a's new one was added.
    assert all(len(packages_with(db, p)) == 1 for p in (b, c, unchanged))
    assert len(db_packages(db)) == n_before + 1
    raw = _raw_of(agent.cfg.spool_dir, rows[1]["package_id"], "a.ras")
    assert raw.read_bytes() == b"second version of a, longer\n"


def test_excluded_temp_and_foreign_files_are_ignored(tmp_path, run_agent):
    watch = tmp_path / "watch"
    watch.mkdir()
    outside = tmp_path / "secret.txt"
    outside.write_text("must never leave the PC")
    cfg = write_config(tmp_path, [instrument(watch, include=["*.ras", "*.txt"], exclude=["notes*"])])
    agent = run_agent(cfg)
    w = agent.watchers["xrd-1"]
    wait_for(lambda: w.scans_done >= 1, 30, "the start-up scan")
    ignored = ["scan.tmp", "~$scan.ras", "scan.ras.part", "scan~", ".~lock.scan.ras#", "Thumbs.db",
               "scan.bak", "scan.swp", "notes-today.txt", "image.tif", "x.crdownload"]
    for name in ignored:
        (watch / name).write_bytes(b"not data")
    (watch / "link.ras").symlink_to(outside)          # never follow links out of the watched tree
    os.mkfifo(watch / "pipe.ras")                     # opening a FIFO blocks: must not hang the watcher
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(watch / "sock.ras"))
    try:
        good = watch / "good.ras"
        good.write_bytes(b"real data")
        wait_for(lambda: packages_with(agent.cfg.state_db, good), 30, "good.ras packaged")
        # A rescan must not pick them up either.
        scans = w.scans_done
        w._rescan()
        assert w.scans_done == scans + 1
        good2 = watch / "good2.txt"
        good2.write_bytes(b"more real data")
        wait_for(lambda: packages_with(agent.cfg.state_db, good2), 30, "good2.txt packaged")
    finally:
        sock.close()
    paths = sorted(f["path"] for f in db_files(agent.cfg.state_db))
    assert paths == [str(good), str(good2)]
    for d in package_dirs(agent.cfg.spool_dir):
        assert "must never leave" not in "".join(p.read_text(errors="replace")
                                                 for p in (d / "data" / "raw").rglob("*") if p.is_file())
        assert [s["path"] for s in provenance(d)["sources"]][0] in (str(good), str(good2))
