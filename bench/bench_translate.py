"""Translation time per sample file next to the raw read time of the same file.

    .venv/bin/python bench/bench_translate.py [SAMPLES_DIR] [--repeat N] [--markdown]

For every file under shared/samples: the best of N raw reads (read_bytes + sha256, what the
agent does anyway), the best of N in-process ``translate()`` calls, and one full sandboxed
``translate_into`` (child start-up, outputs, report), with the ratios to the raw read. The
last columns are the report's vendor-key / mapped-term counts (the docs table uses them).
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from translators.contract import TranslatorError  # noqa: E402
from translators.pipeline import translate_into  # noqa: E402
from translators.registry import load_registry  # noqa: E402


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("samples", nargs="?", default=str(REPO.parent / "shared" / "samples"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    reg = load_registry()
    root = Path(args.samples)
    # one measurement per file; a folder inside a format family (e.g. JEOL AES data036.A) is one measurement
    work: list[tuple[str, list[Path]]] = []
    for fam in sorted(d for d in root.iterdir() if d.is_dir()):
        for p in sorted(fam.iterdir()):
            if p.is_file():
                work.append((str(p.relative_to(root)), [p]))
            elif p.is_dir():
                work.append((str(p.relative_to(root)) + "/", sorted(f for f in p.rglob("*") if f.is_file())))
    sep = " | " if args.markdown else "  "
    head = ["file", "KiB", "translator", "read ms", "translate ms", "x read", "sandboxed ms", "x read",
            "vendor keys", "mapped"]
    print(("| " if args.markdown else "") + sep.join(head) + (" |" if args.markdown else ""))
    if args.markdown:
        print("|" + "---|" * len(head))
    total_read = total_tr = total_sb = 0.0
    for label, paths in work:
        read = best(lambda: [hashlib.sha256(f.read_bytes()).digest() for f in paths], args.repeat)
        t, _ = reg.choose(paths)
        try:
            tr = best(lambda: t.translate(paths), args.repeat) if t else float("nan")
        except TranslatorError:
            tr = float("nan")
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            out = translate_into(paths, Path(tmp) / "pkg" / "data")
            sb = time.perf_counter() - t0
        counts = out.report.get("counts") or {}
        total_read, total_sb = total_read + read, total_sb + sb
        total_tr += tr if tr == tr else 0.0
        size = sum(f.stat().st_size for f in paths)
        row = [label, f"{size / 1024:.0f}", t.name if t else "-",
               f"{read * 1e3:.2f}", f"{tr * 1e3:.1f}", f"{tr / read:.0f}", f"{sb * 1e3:.0f}", f"{sb / read:.0f}",
               str(counts.get("vendor_keys", "-")), str(counts.get("mapped_terms", "-"))]
        print(("| " if args.markdown else "") + sep.join(row) + (" |" if args.markdown else ""))
    print(f"\nall {len(work)} measurements: raw read {total_read * 1e3:.1f} ms, translate {total_tr * 1e3:.0f} ms "
          f"(x{total_tr / total_read:.0f}), sandboxed pipeline {total_sb * 1e3:.0f} ms (x{total_sb / total_read:.0f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
