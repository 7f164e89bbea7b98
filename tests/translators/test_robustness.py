"""Damaged copies of EVERY shared sample go through the real sandboxed pipeline.

Truncated, bit-flipped and empty copies must each end in a report: a clear error naming the
file, or a (partial) translation with warnings; never a hang, a crash of this process, a
traceback as the message, or a changed raw file. The sample list is read from the folder,
so translators added later by other work are covered automatically.
"""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest

from _helpers import SAMPLES, all_sample_files, samples_dir
from translators.pipeline import translate_into

MODES = ("truncated", "bitflip", "empty")
FILES = all_sample_files()


def _damage(data: bytes, mode: str, seed: str) -> bytes:
    if mode == "empty":
        return b""
    if mode == "truncated":
        return data[: max(1, len(data) // 2)]
    rng = random.Random(seed)  # deterministic per file: a failure can be reproduced
    buf = bytearray(data)
    for _ in range(max(8, len(buf) // 2000)):
        i = rng.randrange(len(buf))
        buf[i] ^= 1 << rng.randrange(8)
    return bytes(buf)


def test_samples_present() -> None:
    assert len(list(samples_dir().rglob("*"))) > 30


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sample", FILES, ids=[str(p.relative_to(SAMPLES.resolve())) for p in FILES])
def test_damaged_sample_ends_in_a_clear_report(tmp_path: Path, sample: Path, mode: str) -> None:
    raw = tmp_path / "spool" / sample.name
    raw.parent.mkdir()
    damaged = _damage(sample.read_bytes(), mode, sample.name)
    raw.write_bytes(damaged)
    data = tmp_path / "pkg" / "data"
    out = translate_into([raw], data, timeout_s=60, memory_mb=1024)
    assert hashlib.sha256(raw.read_bytes()).digest() == hashlib.sha256(damaged).digest(), "raw file changed"
    rep = json.loads((data / "labedge" / "translation_report.json").read_text(encoding="utf-8"))
    assert rep["status"] == out.status
    assert out.status in ("ok", "partial", "failed", "untranslated")
    assert not (rep.get("sandbox") or {}).get("timed_out"), f"{sample.name} ({mode}) hung a translator"
    if out.status in ("failed", "untranslated"):
        assert out.error and sample.name in out.error, out.error
        assert "Traceback" not in out.error
        assert not (data / "meta").exists(), "a failed translation must not leave partial outputs"
    else:
        meta = json.loads((data / "meta" / "metadata.json").read_text(encoding="utf-8"))
        assert isinstance(meta["constant"], dict) and isinstance(meta["variable"], list)
        assert all(set(v) <= {"value", "unit"} for v in meta["constant"].values())
    if mode == "empty":
        assert out.status in ("failed", "untranslated")
    assert not list(data.parent.glob(".labedge-translate-*"))
