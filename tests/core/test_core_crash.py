"""Crash safety: SIGKILL the agent at random moments while 50 measurements stream in.

After the last restart there must be exactly 50 bag-valid packages, each source file in exactly
one package, no half-built package anywhere. The seed is printed; rerun a failure with
LABEDGE_CRASH_SEED=<seed>.
"""
from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter

from core_helpers import (db_files, db_packages, instrument, package_dirs, provenance, sha256_of,
                          start_agent_process, status_json, wait_for, write_config, write_slowly)

from agent.package.ids import is_package_id
from agent.package.verify import verify_package

N_MEASUREMENTS = 50
MIN_KILLS = 20


def test_sigkill_storm_loses_and_doubles_nothing(tmp_path):
    seed = int(os.environ.get("LABEDGE_CRASH_SEED", random.randrange(1 << 30)))
    print(f"crash test seed: {seed} (rerun with LABEDGE_CRASH_SEED={seed})")
    rng = random.Random(seed)
    watch = tmp_path / "watch"
    watch.mkdir()
    cfg = write_config(tmp_path, [instrument(watch, settle_seconds=0.3)])
    log = tmp_path / "agent-output.log"
    db = tmp_path / "state" / "state.sqlite3"
    spool = tmp_path / "spool"

    # The plan is drawn up front so the writer thread and the killer use the RNG deterministically.
    writes = [(f"meas_{i:03d}.ras", [rng.randbytes(rng.randint(1, 96 * 1024)) for _ in range(rng.randint(1, 3))],
               rng.uniform(0.0, 0.1), rng.uniform(0.05, 0.5)) for i in range(N_MEASUREMENTS)]
    kill_after = [rng.uniform(0.2, 2.5) for _ in range(200)]
    writer_done = threading.Event()
    writer_error: list[BaseException] = []

    def writer() -> None:
        try:
            for name, chunks, pause, gap in writes:
                write_slowly(watch / name, chunks, pause)
                time.sleep(gap)
        except BaseException as exc:  # surfaced by the main thread
            writer_error.append(exc)
        finally:
            writer_done.set()

    t = threading.Thread(target=writer, name="measurement-writer")
    t.start()
    kills = 0
    checked: set[str] = set()
    try:
        while kills < MIN_KILLS or not writer_done.is_set():
            proc = start_agent_process(cfg, log)
            time.sleep(kill_after[kills % len(kill_after)])
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            kills += 1
            # At every kill point: whatever is visible in spool/packages is a whole, valid bag,
            # and every package the DB knows is there (the DB row is written after the rename).
            for d in package_dirs(spool):
                if d.name not in checked:
                    res = verify_package(d)
                    assert res.ok, f"after kill {kills} (seed {seed}): {res.problems}"
                    checked.add(d.name)
            missing = {p["id"] for p in db_packages(db)} - {d.name for d in package_dirs(spool)}
            assert not missing, f"after kill {kills} (seed {seed}): DB rows without a package: {missing}"
    finally:
        t.join(60)
    assert not writer_error, writer_error
    print(f"{kills} SIGKILLs; packages in the DB after the last kill: {len(db_packages(db))}")

    def quiescent() -> bool:
        st = status_json(cfg)
        return (st["agent"]["running"] and st["measurements_waiting"] == 0 and not st["progress"]
                and sum(st["packages"].values()) >= N_MEASUREMENTS)

    # Final run: everything arrives; then a clean stop and one more start that must add nothing.
    for attempt in ("final run", "restart after quiescence"):
        started = time.time()
        proc = start_agent_process(cfg, log)
        try:
            wait_for(quiescent, 120, f"{attempt}: all {N_MEASUREMENTS} measurements packaged", interval=0.3)
            wait_for(lambda: status_json(cfg)["facts"].get("last_scan:xrd-1", {}).get("at", 0) > started, 30,
                     f"{attempt}: catch-up scan finished")
            # Two settle periods after the scan: anything it found would be settling or queued now.
            time.sleep(0.8)
            wait_for(quiescent, 60, f"{attempt}: quiet again", interval=0.3)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0, log.read_text()[-3000:]

    pkgs = db_packages(db)
    dirs = package_dirs(spool)
    assert len(pkgs) == N_MEASUREMENTS, f"{len(pkgs)} packages in the DB (seed {seed})"
    assert sorted(p["id"] for p in pkgs) == [d.name for d in dirs], "DB and spool/packages disagree"
    assert all(is_package_id(d.name) for d in dirs)
    assert list((spool / "tmp").iterdir()) == [], "half-built packages left in spool/tmp"
    assert sorted(p.name for p in spool.iterdir()) == ["agent.lock", "packages", "tmp"], \
        "damaged-* or stray entries in the spool"  # agent.lock: one agent per spool (agent.instance)
    files = db_files(db)
    per_path = Counter(f["path"] for f in files)
    assert sorted(per_path) == sorted(str(watch / name) for name, *_ in writes)
    assert set(per_path.values()) == {1}, [p for p, n in per_path.items() if n > 1]
    per_pkg = Counter(f["package_id"] for f in files)
    assert set(per_pkg.values()) == {1} and len(per_pkg) == N_MEASUREMENTS
    for d in dirs:
        res = verify_package(d)
        assert res.ok, res.problems
        (src,) = provenance(d)["sources"]
        assert sha256_of(d / "data" / src["raw"]) == sha256_of(src["path"]) == src["sha256"]
