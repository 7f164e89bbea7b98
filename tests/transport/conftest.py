"""Fixtures for the transport tests (the helpers live in transport_helpers.py, importable by name)."""
from __future__ import annotations

from transport_helpers import broker, pki  # noqa: F401 - pytest fixtures
