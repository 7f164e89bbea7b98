"""Shared fixtures: where the real vendor samples are, and artifact folders."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # so every test folder can import testpaths
from testpaths import (ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, RDE_VALIDATE, REPO, SAMPLES, SHARED,  # noqa: E402,F401
                       all_sample_files, in_ci, require_shared)


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


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session. Playwright's sync API runs an event loop on this
    thread while it is open, so a second sync_playwright() (a module's own fixture) fails with "Sync API
    inside the asyncio loop" whenever a session-wide one is still open: every page test shares this one."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        (pytest.fail if in_ci() else pytest.skip)("playwright is not installed (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        (pytest.fail if in_ci() else pytest.skip)(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()
