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


# ------------------------------------------------------------------------------------ commands
ROOT_PW, SIGNING_PW = "root-secret-for-tests", "signing-secret-for-tests"


class Facility:
    """The administrator's side of a test: signing keys, the admin identity, fleet.toml."""

    def __init__(self, root: Path, broker: Broker, pki: PKI) -> None:
        import os

        from facility.keys import PassphraseSource, Signer, init_keys
        root.mkdir(parents=True, exist_ok=True)
        old = {k: os.environ.get(k) for k in ("LABEDGE_ROOT_PASSPHRASE", "LABEDGE_SIGNING_PASSPHRASE")}
        os.environ.update(LABEDGE_ROOT_PASSPHRASE=ROOT_PW, LABEDGE_SIGNING_PASSPHRASE=SIGNING_PW)
        try:
            self.keys = init_keys(root / "keys", PassphraseSource())
            self.signer = Signer.from_file(self.keys.admin_key("admin"), PassphraseSource())
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.cert, self.key = issue(pki.ca_dir, "labedge-admin", root / "admin", force=True)
        self.fleet_toml = root / "fleet.toml"
        cfg = {"broker": broker.url, "ca_file": str(pki.ca), "cert_file": str(self.cert), "key_file": str(self.key),
               "signing_key": str(self.keys.admin_key("admin")), "trust_root": str(self.keys.root_pub),
               "ca_dir": str(pki.ca_dir)}
        self.fleet_toml.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in cfg.items()))
        self.broker, self.pki = broker, pki

    def command(self, *args: str, timeout: float = 60) -> "subprocess.CompletedProcess[str]":
        """`labedge fleet command --config fleet.toml ...` as the administrator types it."""
        import os
        import subprocess
        from transport_helpers import REPO
        return subprocess.run([sys.executable, "-m", "agent", "fleet", "command", "--config", str(self.fleet_toml),
                               *args], capture_output=True, text=True, cwd=REPO, timeout=timeout,
                              env={**os.environ, "LABEDGE_SIGNING_PASSPHRASE": SIGNING_PW})


def with_trust_root(config: Path, root_pub: Path) -> Path:
    """Pin the facility's root key on a device ([remote] trust_root), as an installer would."""
    config.write_text(config.read_text() + f'[remote]\ntrust_root = "{root_pub}"\n')
    return config


class MqttAs:
    """A raw MQTT client with some identity (the admin, a compromised device) for forging tests."""

    def __init__(self, broker: Broker, pki: PKI, cert: Path, key: Path, subscriptions: list[str]) -> None:
        from wire.link import Link, LinkSettings
        from wire.tls import client_context
        self.messages: list[tuple[str, bytes]] = []
        self.pubacks: dict[int, int] = {}
        from cryptography import x509
        cn = x509.load_pem_x509_certificate(Path(cert).read_bytes()).subject.rfc4514_string().split("=", 1)[1]
        self.link = Link(LinkSettings(host="localhost", port=broker.port, client_id=cn, ca_file=pki.ca,
                                      cert_file=cert, key_file=key, session_expiry=0, clean_start=True,
                                      subscriptions=[(s, 1) for s in subscriptions]),
                         client_context(pki.ca, cert, key),
                         on_message=lambda m: self.messages.append((m.topic, bytes(m.payload))),
                         on_puback=lambda mid, rc: self.pubacks.__setitem__(mid, rc))
        self.link.connect_once()

    def publish(self, topic: str, payload: bytes) -> int:
        mid = self.link.publish(topic, payload)
        assert mid is not None
        wait_for(lambda: self.link.loop(0.05) and mid in self.pubacks, 10, f"the PUBACK for {topic}")
        return self.pubacks[mid]

    def result(self, cmd_id: str, n: int = 1, timeout: float = 20) -> list[dict]:
        """The first ``n`` results for ``cmd_id``."""
        from wire.commands import parse_result

        def got() -> list[dict] | None:
            self.link.loop(0.05)
            out = [parse_result(p) for t, p in self.messages if t.endswith(f"/cmd-result/{cmd_id}")]
            return out if len(out) >= n else None
        return wait_for(got, timeout, f"{n} result(s) for command {cmd_id}")

    def close(self) -> None:
        self.link.close()
