"""Fixtures for the remote-config tests: the transport tests' real broker and PKI."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transport"))
from transport_helpers import broker, pki  # noqa: E402,F401 - pytest fixtures
