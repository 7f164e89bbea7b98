"""Fixtures for the remote-config tests: the transport tests' real broker and PKI."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transport"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fleet"))
from transport_helpers import broker, pki  # noqa: E402,F401 - pytest fixtures
from fleet_helpers import pg_or_skip  # noqa: E402


@pytest.fixture()
def pg_url():
    """A throwaway PostgreSQL database per test (the fleet tests' fixture)."""
    db = pg_or_skip()
    yield db.url
    db.drop()
