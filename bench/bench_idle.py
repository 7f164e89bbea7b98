"""Idle CPU of `labedge run` watching 10,000 already-packaged files.

    .venv/bin/python bench/bench_idle.py [--files 10000] [--seconds 65] [--rescan 60]

The agent runs as a real subprocess with its default settle time (5 s) and a periodic rescan
(default 60 s, the shipped default), so the window includes one full rescan. CPU time comes
from /proc/<pid>/stat (utime+stime of the agent and its reaped children). Reference in the same
run: the CPU cost of one bare os.walk+stat of the same tree, i.e. what a rescan cannot beat.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scan import make_tree, prepopulate, write_cfg  # noqa: E402

from agent.config import load_config  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / TICKS


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=65.0)
    ap.add_argument("--rescan", type=int, default=60)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = ap.parse_args()
    repo = Path(__file__).resolve().parents[1]
    work = Path(tempfile.mkdtemp(prefix="labedge-bench-idle-", dir=args.dir))
    proc = None
    try:
        watch = work / "watch"
        paths = make_tree(watch, args.files, 100)
        cfg = write_cfg(work, watch, rescan_seconds=args.rescan)
        text = cfg.read_text().replace("settle_seconds = 0.5", "settle_seconds = 5")
        cfg.write_text(text)
        prepopulate(load_config(cfg).state_db, paths)
        c0 = time.process_time()
        for dirpath, _d, files in os.walk(watch):
            for f in files:
                os.stat(os.path.join(dirpath, f))
        walk_cpu = time.process_time() - c0
        proc = subprocess.Popen([sys.executable, "-m", "agent", "run", "-c", str(cfg)], cwd=repo,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        status = [sys.executable, "-m", "agent", "status", "--json", "-c", str(cfg)]
        deadline = time.time() + 60
        while time.time() < deadline:
            st = json.loads(subprocess.run(status, cwd=repo, capture_output=True, text=True).stdout or "{}")
            if st.get("agent", {}).get("running") and any(k.startswith("last_scan") for k in st.get("facts", {})):
                break
            time.sleep(0.5)
        else:
            raise SystemExit("agent did not finish its start-up scan within 60 s")
        time.sleep(2)  # let start-up work finish
        c_start, t_start = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(args.seconds)
        cpu, wall = cpu_seconds(proc.pid) - c_start, time.monotonic() - t_start
        st = json.loads(subprocess.run(status, cwd=repo, capture_output=True, text=True).stdout)
        print(f"{args.files} files watched, settle 5 s, rescan every {args.rescan} s, window {wall:.0f} s")
        print(f"agent idle CPU: {cpu:.2f} s over {wall:.0f} s = {100 * cpu / wall:.2f} % of one core (target < 1 %)")
        print(f"reference: one bare os.walk+stat of the tree costs {walk_cpu:.3f} s CPU "
              f"= {100 * walk_cpu / args.rescan:.2f} % of one core per rescan interval")
        print(f"packages in the queue: {st['packages']} (pre-populated: {args.files // 1000}; none re-packaged "
              f"means {args.files // 1000})")
        return 0
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
