"""Helpers for the fleet-operations tests: own device identities (renewal rewrites their files, so never
the session fixture's), the renewal service as a process."""
from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from types import SimpleNamespace

from facility.pki import issue
from transport_helpers import Broker, PKI, Proc, wait_for

UTC = dt.timezone.utc


def device_identity(pki: PKI, name: str, root: Path, *, days_left: float = 365) -> SimpleNamespace:
    """A device certificate of our own (a stand-in for `pki`'s, with the same `ca` and `certs`)."""
    now = dt.datetime.now(UTC)
    cert, key = issue(pki.ca_dir, name, root, not_before=now - dt.timedelta(days=1),
                      not_after=now + dt.timedelta(days=days_left), force=True)
    return SimpleNamespace(ca=pki.ca, ca_dir=pki.ca_dir, certs={name: (cert, key)})


class RenewalProc(Proc):
    """`labedge pki serve` as the facility runs it, with its own identity (CN labedge-pki)."""

    def __init__(self, root: Path, broker: Broker, pki: PKI, **extra: object) -> None:
        root.mkdir(parents=True, exist_ok=True)
        cert, key = issue(pki.ca_dir, "labedge-pki", root, force=True)
        cfg = {"broker": broker.url, "ca_file": str(pki.ca), "cert_file": str(cert), "key_file": str(key),
               "ca_dir": str(pki.ca_dir), "reconnect_max": 1, **extra}
        self.config = root / "pki-serve.toml"
        self.config.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in cfg.items()))
        super().__init__([sys.executable, "-m", "agent", "pki", "serve", "-c", str(self.config)], root / "pki.log")

    def start_connected(self) -> "RenewalProc":
        self.start()
        wait_for(lambda: "connected to " in self.text() or not self.alive(), 30, "the renewal service to connect")
        assert self.alive(), self.text()[-3000:]
        return self
