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


@pytest.fixture(autouse=True)
def _private_device_locks(tmp_path_factory, monkeypatch):
    """The one-agent-per-device-id lock is machine-wide; give each test its own lock folder so
    tests (and other checkouts running their tests on this machine) with the same device ids
    do not refuse each other. Agent subprocesses inherit it through the environment."""
    monkeypatch.setenv("LABEDGE_DEVICE_LOCK_DIR", str(tmp_path_factory.mktemp("device-locks")))
