"""Fixtures for the exactly-once tests: the core helpers (configs, agent processes) and the
transport fixtures (a real mosquitto over mTLS, a test PKI)."""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for sub in ("core", "transport"):
    sys.path.insert(0, str(HERE.parent / sub))

from transport_helpers import broker, pki  # noqa: E402,F401 - pytest fixtures
