"""Throughput: copy + hash + package of one big file vs plain shutil.copyfile + hashlib.

    .venv/bin/python bench/bench_copy.py [--size-mib 1024] [--dir /tmp] [--rounds 2]

Both sides read the same (page-cached) source file in the same run; the best of ``rounds``
alternating runs is compared. The agent side is the real ``build_package`` (copy with sha256
while copying, fsync, translator sandbox, bag tags, atomic rename). The plain reference does not
fsync, so a second reference with fsync is printed too: that is the cost of durability.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import agent.package.builder as builder  # noqa: E402
import agent.package.copying as copying  # noqa: E402
from agent.measurement import Measurement, SourceFile  # noqa: E402
from agent.package.builder import BuildContext, Spool, build_package  # noqa: E402
from agent.package.copying import copy_and_hash  # noqa: E402
from agent.pairing import UnpairedPairer  # noqa: E402

MiB = 1024 * 1024


def make_file(path: Path, size: int) -> None:
    block = os.urandom(16 * MiB)  # incompressible; repeated blocks are fine for copy/hash speed
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, len(block))
            fh.write(block[:n])
            left -= n


def reference(src: Path, dst: Path, fsync: bool) -> tuple[float, str]:
    t0 = time.perf_counter()
    shutil.copyfile(src, dst)
    h = hashlib.sha256()
    with open(src, "rb") as fh:
        while chunk := fh.read(4 * MiB):
            h.update(chunk)
    if fsync:
        fd = os.open(dst, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    took = time.perf_counter() - t0
    dst.unlink()
    return took, h.hexdigest()


def agent_copy_only(src: Path, dst: Path, fsync: bool = True) -> tuple[float, str]:
    t0 = time.perf_counter()
    c = copy_and_hash(src, dst, fsync=fsync)
    took = time.perf_counter() - t0
    dst.unlink()
    return took, c.sha256


TRANSLATE_TIMES: list[float] = []
_real_translate = builder.translate_into


def _timed_translate(*args, **kw):  # noqa: ANN002, ANN003 - pass-through
    t0 = time.perf_counter()
    try:
        return _real_translate(*args, **kw)
    finally:
        TRANSLATE_TIMES.append(time.perf_counter() - t0)


builder.translate_into = _timed_translate


def agent_copy_single_thread(src: Path, dst: Path) -> tuple[float, str]:
    """The copy loop before it was pipelined (read, hash, write in one thread), for comparison."""
    saved = copying.PIPELINE_MIN
    copying.PIPELINE_MIN = 1 << 62
    try:
        return agent_copy_only(src, dst, True)
    finally:
        copying.PIPELINE_MIN = saved


def agent_package(src: Path, spool: Spool) -> tuple[float, str]:
    st = src.stat()
    m = Measurement("bench", str(src), [SourceFile(src, src.name, st.st_size, st.st_mtime_ns)], time.time(), src.parent)
    pairing = UnpairedPairer().pair(m, None)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    built = build_package(spool, m, pairing, BuildContext("bench-pc"), translator="auto")
    took = time.perf_counter() - t0
    sha = built.files[0].sha256
    shutil.rmtree(built.path)
    return took, sha


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    size = args.size_mib * MiB
    work = Path(tempfile.mkdtemp(prefix="labedge-bench-copy-", dir=args.dir))
    try:
        src = work / "big.raw"
        make_file(src, size)
        spool = Spool(work / "spool")
        spool.ensure()
        agent_copy_only(src, work / "warm")  # warm the page cache for everyone
        best: dict[str, float] = {}
        digests = set()
        for _ in range(args.rounds):
            for name, fn in (("reference copyfile+sha256", lambda: reference(src, work / "ref", False)),
                             ("reference copyfile+sha256+fsync", lambda: reference(src, work / "ref", True)),
                             ("agent copy_and_hash (no fsync)", lambda: agent_copy_only(src, work / "cp", False)),
                             ("agent copy_and_hash (fsync)", lambda: agent_copy_only(src, work / "cp")),
                             ("  same, single-threaded (before)", lambda: agent_copy_single_thread(src, work / "cp")),
                             ("agent build_package (full)", lambda: agent_package(src, spool))):
                took, digest = fn()
                digests.add(digest)
                best[name] = min(best.get(name, 1e9), took)
        assert len(digests) == 1, "digests differ"
        print(f"file: {args.size_mib} MiB in {work} ({os.cpu_count()} CPUs), best of {args.rounds}")
        for name, took in best.items():
            print(f"  {name:34s} {took:7.2f} s  {args.size_mib / took:7.0f} MiB/s")
        ref, ref_sync = best["reference copyfile+sha256"], best["reference copyfile+sha256+fsync"]
        full = best["agent build_package (full)"]
        tr = min(TRANSLATE_TIMES)
        print(f"  of which the translator sandbox (fixed per package + its own read of the raw copy): {tr:.2f} s")
        print(f"ratio build_package vs plain reference:        {ref / full:.2f} (target >= 0.8)")
        print(f"ratio build_package minus translator vs plain: {ref / (full - tr):.2f}")
        print(f"ratio build_package vs reference with fsync:   {ref_sync / full:.2f}")
        print(f"ratio copy_and_hash (fsync) vs ref with fsync: {ref_sync / best['agent copy_and_hash (fsync)']:.2f}")
        print(f"ratio copy_and_hash (no fsync) vs plain ref:   {ref / best['agent copy_and_hash (no fsync)']:.2f}")
        print(f"ratio single-threaded copy (before) vs ref with fsync: "
              f"{ref_sync / best['  same, single-threaded (before)']:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
