"""Shared fixtures: where the real vendor samples are, and artifact folders."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # so every test folder can import testpaths
from testpaths import (ARTIFACTS, RDE_VALIDATE, REPO, SAMPLES, SHARED, all_sample_files,  # noqa: E402,F401
                       in_ci, require_shared)


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return require_shared(SAMPLES)


@pytest.fixture(scope="session")
def rde_validate() -> Path:
    return require_shared(RDE_VALIDATE)


@pytest.fixture()
def artifacts_dir(request) -> Path:
    d = ARTIFACTS / request.node.name.replace("/", "_").replace("[", "_").replace("]", "")
    d.mkdir(parents=True, exist_ok=True)
    return d
