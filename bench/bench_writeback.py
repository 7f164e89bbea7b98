"""Why a big file copies slower inside a run than in bench_copy: the disk's writeback, not our code.

    .venv/bin/python bench/bench_writeback.py [--size-mib 512] [--rounds 3] [--dir /tmp]

For each round a fresh source file is written at full speed (as a benchmark does, and as no
instrument does: they write over minutes). It is then copied twice, each time with fsync:
by labedge's ``copy_and_hash`` and by the reference ``shutil.copyfile`` + ``os.fsync``, in
alternating order. Both are timed with the source's pages still dirty ("fresh") and again after
the source was fsynced ("synced"). If our copy and the reference slow down together, the slowdown
is the disk writing back the source's pages while the copy is being fsynced.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.package.copying import copy_and_hash  # noqa: E402

MiB = 1024 * 1024


def write_source(path: Path, size: int) -> None:
    block = os.urandom(16 * MiB)
    with open(path, "wb") as fh:
        for _ in range(size // len(block)):
            fh.write(block)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ours(src: Path, dst: Path) -> None:
    copy_and_hash(src, dst, fsync=True)


def reference(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    fsync_file(dst)


def timed(fn, src: Path, dst: Path) -> float:  # noqa: ANN001
    t = time.perf_counter()
    fn(src, dst)
    dt = time.perf_counter() - t
    dst.unlink()
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    a = ap.parse_args()
    size = a.size_mib // 16 * 16 * MiB
    work = Path(tempfile.mkdtemp(prefix="labedge-writeback-", dir=a.dir))
    res: dict[tuple[str, str], list[float]] = {}
    try:
        for r in range(a.rounds):
            for state in ("fresh", "synced"):
                src = work / "source.bin"
                write_source(src, size)
                if state == "synced":
                    fsync_file(src)
                order = [("labedge", ours), ("reference", reference)]
                if r % 2:
                    order.reverse()
                for name, fn in order:
                    res.setdefault((state, name), []).append(size / MiB / timed(fn, src, work / f"{name}.bin"))
                src.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{a.size_mib} MiB, {a.rounds} rounds, MiB/s (median; min-max), copy + fsync of a just-written source")
    for state in ("fresh", "synced"):
        ours_v, ref_v = res[(state, "labedge")], res[(state, "reference")]
        print(f"  source {state:6s}: labedge copy_and_hash {statistics.median(ours_v):6.0f} ({min(ours_v):.0f}-"
              f"{max(ours_v):.0f})   shutil.copyfile+fsync {statistics.median(ref_v):6.0f} ({min(ref_v):.0f}-"
              f"{max(ref_v):.0f})   ratio {statistics.median(ours_v) / statistics.median(ref_v):.2f}")


if __name__ == "__main__":
    main()
