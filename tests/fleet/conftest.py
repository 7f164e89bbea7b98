"""Fixtures for the fleet tests: the transport tests' real mosquitto and PKI, plus PostgreSQL."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transport"))
from transport_helpers import broker, pki  # noqa: E402,F401 - pytest fixtures
from fleet_helpers import pg_or_skip  # noqa: E402


@pytest.fixture()
def pg_url():
    db = pg_or_skip()
    yield db.url
    db.drop()
