"""Timing helpers shared by the translator benchmarks."""
from __future__ import annotations

import hashlib
import statistics
import time
from pathlib import Path
from typing import Callable


def median_time(fn: Callable[[], object], n: int = 7) -> float:
    """Median wall time of ``n`` calls: robust to one slow run on a shared machine."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def read_and_hash(paths: list[Path]) -> float:
    """The reference: read and sha256 the same bytes, which the agent does for every file anyway."""
    return median_time(lambda: [hashlib.sha256(p.read_bytes()).digest() for p in paths], 7)
