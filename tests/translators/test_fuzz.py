"""Fuzz every shared sample: random trailing bytes for ../shared/samples (truncation and bit flips
of those run through the sandbox in test_robustness.py), and truncated at a random point, bit
flipped and random trailing bytes for ../shared/samples-variants. All cases run in one child
process (bounded: at most 3 cases a file, 20 s a case). Each must end in a clear report: ok/partial with metadata, or a failure whose
message names the file; never a hang, a traceback, or a translator bug before the header."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from _helpers import SAMPLES, all_sample_files, samples_dir

HERE = Path(__file__).resolve().parent
VARIANTS = SAMPLES.parent / "samples-variants"


def test_fuzzed_samples_end_in_clear_reports(tmp_path: Path) -> None:
    samples_dir()
    # ../shared/samples is already truncated and bit-flipped through the sandbox by
    # test_robustness.py: here it gets the trailing-bytes case, the variants all three
    shared = all_sample_files()
    variants = sorted(p for p in VARIANTS.resolve().rglob("*") if p.is_file() and p.name != "SOURCES.md") \
        if VARIANTS.is_dir() else []
    args = [f"trailing:{p}" for p in shared] + [str(p) for p in variants]
    out = tmp_path / "fuzz.json"
    subprocess.run([sys.executable, str(HERE / "_fuzz.py"), str(out), *args], check=True, timeout=300, cwd=tmp_path)
    cases = json.loads(out.read_text())
    assert len(cases) == len(shared) + 3 * len(variants)
    bad = []
    for c in cases:
        name = Path(c["file"]).name
        problem = None
        if c["status"] in ("timeout", "raised"):
            problem = c["error"]
        elif c["status"] in ("ok", "partial"):
            problem = None if c["meta"] else "no meta/metadata.json"
        elif c["status"] in ("failed", "untranslated"):
            if c.get("detail"):
                problem = "translator bug before the header: " + c["error"]
            elif not c["error"] or name not in c["error"] or "Traceback" in c["error"]:
                problem = f"unclear error: {c['error']!r}"
        else:
            problem = f"unknown status {c['status']}"
        if problem:
            bad.append(f"{name} ({c['mode']}): {problem}")
    assert not bad, "\n".join(bad)
