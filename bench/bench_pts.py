"""JEOL .pts event decoding: time against references on the same bytes in the same process.

Rows: the real sample (1.3 MiB of events, 0.3 M X-rays) through ``translate()`` and through the
decoder alone, and the same stream repeated 20x (27 MiB, 280 sweeps) through the decoder, to
show the rate does not fall with size. References: ``np.frombuffer(...).sum()`` over the same
words (the cheapest full pass numpy can make) and sha256 of the same bytes (what the agent does
to every file anyway).

usage: .venv/bin/python bench/bench_pts.py [SAMPLES_VARIANTS_DIR]
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _timing import median_time  # noqa: E402
from translators.jeol_eds import JeolEdsTranslator  # noqa: E402
from translators.jeol_eds.events import decode, scan_params, stream_bounds  # noqa: E402
from translators.jeol_eds.tree import find_tree, parse_tree  # noqa: E402
from translators.writer import flatten  # noqa: E402


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "samples-variants"
    pts = root / "jeol_eds" / "Sample" / "00_View000" / "View000_0000006.pts"
    data = pts.read_bytes()
    flat = flatten(parse_tree(data, find_tree(data), pts.name)[0])
    p, _ = scan_params(flat, 2048, pts.name)
    start, end, _ = stream_bounds(data, pts.name)
    real = np.frombuffer(data, "<u2", (end - start) // 2, start)
    big = np.tile(real, 20)
    t = JeolEdsTranslator()
    print(f"{'case':44} {'MiB':>6} {'ms':>8} {'frombuffer+sum ms':>18} {'x':>6} {'sha256 ms':>10} {'x':>6} {'MiB/s':>7}")
    for label, words, fn in (
            ("real .pts: translate()", real, lambda: t.translate([pts])),
            ("real .pts: decode() only", real, lambda: decode(real, p, 2048, "b")),
            ("stream x20 (280 sweeps): decode() only", big, lambda: decode(big, p, 2048, "b"))):
        raw = words.tobytes()
        ms = median_time(fn, 5) * 1e3
        ref = median_time(lambda: np.frombuffer(raw, "<u2").sum(dtype=np.int64), 7) * 1e3
        sha = median_time(lambda: hashlib.sha256(raw).digest(), 7) * 1e3
        mib = len(raw) / 2**20
        print(f"{label:44} {mib:6.1f} {ms:8.1f} {ref:18.2f} {ms / ref:6.0f} {sha:10.2f} {ms / sha:6.1f} {mib / ms * 1e3:7.0f}")


if __name__ == "__main__":
    main()
