"""Shared by the translator tests: where the real samples are, damaged copies, and output checks."""
from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / ".." / "shared" / "samples"
RDE_VALIDATE = REPO / ".." / "shared" / "tools" / "rde-validate"


def samples_dir() -> Path:
    if SAMPLES.is_dir():
        return SAMPLES.resolve()
    if os.environ.get("CI") == "true":
        pytest.fail(f"shared samples folder {SAMPLES} is missing (CI=true: this is a failure, not a skip)")
    pytest.skip(f"shared samples folder {SAMPLES} is absent; translator tests need the real vendor files")


def all_sample_files() -> list[Path]:
    if not SAMPLES.is_dir():
        return []
    return sorted(p for p in SAMPLES.resolve().rglob("*") if p.is_file() and p.name != "SOURCES.md")


def rde_validate(path: Path) -> None:
    if not RDE_VALIDATE.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{RDE_VALIDATE} is missing")
        pytest.skip("rde-validate tool is absent")
    res = subprocess.run([str(RDE_VALIDATE), str(path)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"rde-validate {path} failed:\n{res.stdout}\n{res.stderr}"


def report(data_dir: Path) -> dict:
    return json.loads((data_dir / "labedge" / "translation_report.json").read_text(encoding="utf-8"))


def metadata(data_dir: Path) -> dict:
    return json.loads((data_dir / "meta" / "metadata.json").read_text(encoding="utf-8"))


def assert_cuts_are_corrupt(translator: Any, src: Path, out_dir: Path,
                            fractions: tuple[float, ...] = (0.3, 0.6, 0.95)) -> None:
    """Every cut-off copy of ``src`` raises CorruptFile, and the message names the copy."""
    from translators.contract import CorruptFile

    data = src.read_bytes()
    for frac in fractions:
        p = out_dir / f"cut{int(frac * 100)}_{src.name}"
        p.write_bytes(data[:int(len(data) * frac)])
        with pytest.raises(CorruptFile) as e:
            translator.translate([p])
        assert p.name in str(e.value)


def damaged_copies(srcs: list[Path], out_dir: Path, *, seed: int, rounds: int,
                   flips: int = 20) -> Iterator[list[Path]]:
    """``rounds`` sets of copies of ``srcs`` with ``flips`` random bytes changed (same seed, same bytes)."""
    rnd = random.Random(seed)
    for k in range(rounds):
        paths = []
        for src in srcs:
            b = bytearray(src.read_bytes())
            for _ in range(flips):
                b[rnd.randrange(len(b))] = rnd.randrange(256)
            p = out_dir / f"{k}_{src.name}"
            p.write_bytes(bytes(b))
            paths.append(p)
        yield paths


def write_checked(translator: Any, raw: list[Path], out_dir: Path) -> tuple[Any, dict]:
    """Translate ``raw`` and write the outputs; no value may miss the vocabulary or be dropped."""
    from translators import progress
    from translators.writer import write_outputs

    result, error = progress.translate(translator, raw)
    assert error is None, error
    rep = write_outputs(result, translator.vocabulary(), raw, out_dir,
                        translator=translator.name, version=translator.version)
    bad = [w for w in rep["warnings"] if "not in the translator's vocabulary" in w or "unparsed_values" in w]
    assert not bad, bad
    return result, rep


def assert_rde_valid(tool: Path, path: Path) -> None:
    """``tool`` is the ``rde_validate`` fixture (skips/fails by itself when the tool is absent)."""
    out = subprocess.run([str(tool), str(path)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
