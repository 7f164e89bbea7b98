"""Scale: start-up catch-up over 100,000 already-packaged files vs a bare os.walk + stat.

    .venv/bin/python bench/bench_scan.py [--files 100000] [--per-dir 100] [--dir /tmp]

The tree is created with tiny files; the state DB is pre-populated through the real
``StateStore.add_package`` (1,000 files per package, as if the agent had packaged them before).
Then a real ``Agent`` starts (recovery, DB load, watchdog observers, catch-up scan) and we time
until its first scan is done, check that nothing was re-packaged, and compare with os.walk+stat
of the same tree in the same run.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.config import load_config  # noqa: E402
from agent.runner import Agent  # noqa: E402
from agent.state.store import FileRecord, StateStore  # noqa: E402

INSTRUMENT = "bench-xrd"


def make_tree(root: Path, n_files: int, per_dir: int) -> list[str]:
    paths = []
    for i in range(n_files):
        d = root / f"2026-{i // per_dir:05d}"
        if i % per_dir == 0:
            d.mkdir(parents=True)
        p = os.path.join(d, f"scan_{i:06d}.ras")
        with open(p, "wb") as fh:
            fh.write(b"%d\n" % i)
        paths.append(p)
    return paths


def prepopulate(db: Path, paths: list[str], batch: int = 1000) -> float:
    t0 = time.perf_counter()
    store = StateStore(db)
    for b in range(0, len(paths), batch):
        recs = []
        for p in paths[b:b + batch]:
            st = os.stat(p)
            recs.append(FileRecord(p, st.st_size, st.st_mtime_ns, "0" * 64))
        store.add_package(package_id=f"20260101T000000{b // batch:03d}Z-0000{b // batch:04x}", instrument_id=INSTRUMENT,
                          path="/nonexistent", nbytes=0, files=recs, created_at=time.time())
    store.close()
    return time.perf_counter() - t0


def walk_stat(root: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = 0
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            os.stat(os.path.join(dirpath, f))
            n += 1
    return time.perf_counter() - t0, n


def write_cfg(work: Path, watch: Path, **top: object) -> Path:
    extra = "".join(f"{k} = {v}\n" for k, v in top.items())
    cfg = work / "labedge.toml"
    cfg.write_text(f'device_id = "bench-pc"\nspool_dir = "{work}/spool"\nstate_dir = "{work}/state"\n'
                   f'log_dir = "{work}/log"\n{extra}[web]\nenabled = false\n[[instruments]]\nid = "{INSTRUMENT}"\n'
                   f'watch = ["{watch}"]\nsettle_seconds = 0.5\nunpaired_policy = "send"\nhold_seconds = 0\n',
                   encoding="utf-8")
    return cfg


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--per-dir", type=int, default=100)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="labedge-bench-scan-", dir=args.dir))
    try:
        watch = work / "watch"
        t0 = time.perf_counter()
        paths = make_tree(watch, args.files, args.per_dir)
        print(f"tree: {args.files} files in {args.files // args.per_dir} folders, created in "
              f"{time.perf_counter() - t0:.1f} s")
        cfg = write_cfg(work, watch)
        took = prepopulate(load_config(cfg).state_db, paths)
        print(f"state DB pre-populated via StateStore.add_package in {took:.1f} s")
        ref1, n = walk_stat(watch)
        agent = Agent(load_config(cfg))
        t0 = time.perf_counter()
        agent.start()
        w = agent.watchers[INSTRUMENT]
        while w.scans_done < 1:
            time.sleep(0.01)
        startup = time.perf_counter() - t0
        scan = agent.health.get(f"last_scan:{INSTRUMENT}")
        time.sleep(1.5)  # three settle periods: anything the scan queued would be packaged or pending now
        repackaged, pending = agent.pipeline.packaged, len(w.tracker) + agent.pipeline.pending()
        leaked = agent.stop()
        ref2, _ = walk_stat(watch)
        ref = min(ref1, ref2)
        print(f"reference os.walk + os.stat of {n} files:  {ref:.2f} s")
        print(f"agent start() until catch-up scan done:     {startup:.2f} s "
              f"(scan itself {scan['seconds']:.2f} s for {scan['files']} files)")
        print(f"ratio agent start-up / bare walk:           {startup / ref:.1f}x")
        print(f"re-packaged: {repackaged}, still settling or queued: {pending}, leaked threads: {leaked}")
        return 0 if repackaged == 0 and pending == 0 and not leaked else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
