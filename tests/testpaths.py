"""Paths shared by every test folder: the real vendor samples beside the checkout, artifacts.

A plain module with a unique name, so that tests in any folder can import it (several folders
have a conftest.py of their own, and `from conftest import ...` would pick the wrong one).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SAMPLES = SHARED / "samples"
RDE_VALIDATE = SHARED / "tools" / "rde-validate"
ARTIFACTS = REPO / "test-artifacts"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_shared(path: Path) -> Path:
    """Skip when ../shared is absent on a developer machine; fail under CI=true."""
    if not path.exists():
        msg = f"{path} is absent (the real vendor samples live in ../shared beside the checkout)"
        if in_ci():
            pytest.fail(msg + "; CI=true requires it")
        pytest.skip(msg)
    return path


def all_sample_files() -> list[Path]:
    if not SAMPLES.exists():
        return []
    return sorted(p for p in SAMPLES.rglob("*") if p.is_file() and p.name != "SOURCES.md")

#: Debian's Chromium (.ci/run installs it) and the flags it needs headless in a container
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
