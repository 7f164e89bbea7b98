"""Fixtures for the sample-sheet tests: a real in-process agent and one headless Chromium per session."""
from __future__ import annotations

from pathlib import Path

import pytest
from sheets_helpers import AgentEnv, write_config


@pytest.fixture()
def agent_env(tmp_path: Path):
    """A config with one FIB instrument (policy hold); call ``env.start()``; stopped at teardown."""
    env = AgentEnv(tmp_path, tmp_path / "watch", write_config(tmp_path))
    yield env
    env.stop()


@pytest.fixture()
def page(browser):
    ctx = browser.new_context(viewport={"width": 1000, "height": 900}, locale="en-US", accept_downloads=True)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.js_errors = errors  # type: ignore[attr-defined]
    yield pg
    ctx.close()
