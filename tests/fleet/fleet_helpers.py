"""Helpers for the fleet tests: the administrator's identity and fleet.toml, a throwaway PostgreSQL
database, and a lightweight status publisher that speaks as a device (its own certificate)."""
from __future__ import annotations

import json
import secrets
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transport"))
from transport_helpers import PKI, Broker, wait_for  # noqa: E402
from testpaths import in_ci  # noqa: E402

from wire import status as S  # noqa: E402
from wire import topics  # noqa: E402

ADMIN = "labedge-admin"
PG = {"user": "postgres", "host": "127.0.0.1", "port": 5432}


def identity(pki: PKI, name: str) -> tuple[Path, Path]:
    """A client certificate for ``name`` (made once per session)."""
    from facility.pki import issue
    if name not in pki.certs:
        pki.certs[name] = issue(pki.ca_dir, name, pki.root / "clients")
    return pki.certs[name]


def write_fleet_toml(root: Path, broker: Broker, pki: PKI, **extra: Any) -> Path:
    cert, key = identity(pki, ADMIN)
    cfg = {"broker": broker.url, "ca_file": str(pki.ca), "cert_file": str(cert), "key_file": str(key), **extra}
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    dash = cfg.pop("dashboard", None)
    lines += [f"{k} = {json.dumps(v)}" for k, v in cfg.items()]
    if dash:
        lines.append("[dashboard]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in dash.items()]
    p = root / "fleet.toml"
    p.write_text("\n".join(lines) + "\n")
    return p


class PgDatabase:
    """CREATE DATABASE labedge_test_<random> on the local server; drop() removes it."""

    def __init__(self) -> None:
        import pg8000.dbapi
        self.name = f"labedge_test_{secrets.token_hex(4)}"
        try:
            conn = pg8000.dbapi.connect(database="postgres", timeout=10, **PG)
        except Exception as exc:  # noqa: BLE001
            raise ConnectionError(str(exc)) from None
        conn.autocommit = True
        conn.cursor().execute(f"CREATE DATABASE {self.name}")
        conn.close()
        self.url = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{self.name}"

    def drop(self) -> None:
        import pg8000.dbapi
        conn = pg8000.dbapi.connect(database="postgres", timeout=10, **PG)
        conn.autocommit = True
        conn.cursor().execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
        conn.close()


def pg_or_skip() -> PgDatabase:
    import pytest
    try:
        return PgDatabase()
    except ConnectionError as exc:
        if in_ci():
            pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is not reachable ({exc}); .ci/run starts it")
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not reachable ({exc})")


class SimDevice:
    """A device's status publisher only: its own certificate, a will, retained status documents."""

    def __init__(self, broker: Broker, pki: PKI, device: str, *, interval: int = 60, keepalive: int = 30,
                 prefix: str = "rde") -> None:
        cert, key = identity(pki, device)
        self.device, self.interval, self.prefix = device, interval, prefix
        self.topic = f"{prefix}/{device}/status"  # raw: the tests also speak as non-devices
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=device, protocol=mqtt.MQTTv5)
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        ctx.load_cert_chain(str(cert), str(key))
        ctx.check_hostname = True
        self.client.tls_set_context(ctx)
        self.client.will_set(self.topic, S.offline_document(device, "connection lost", time.time()), qos=1,
                             retain=True)
        self.port, self.keepalive = broker.port, keepalive
        self.acks: dict[int, int] = {}
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.acks.__setitem__(mid, rc.value)

    def connect(self) -> "SimDevice":
        self.client.connect("localhost", self.port, keepalive=self.keepalive)
        self.client.loop_start()
        return self

    def doc(self, **fields: Any) -> dict[str, Any]:
        d = {"v": 1, "device": self.device, "online": True, "sent_at": time.time(), "connected_at": time.time(),
             "interval": self.interval, "agent_version": "0.1.0", "config": {"version": "abc123", "state": "local"},
             "queue": {"queued": 0, "uploading": 0, "delivered": 3, "failed": 0}, "oldest_waiting_s": None,
             "problems": [], "cert_not_after": time.time() + 200 * 86400, "last_delivery": time.time() - 30,
             "os": "Linux", "host": f"{self.device}.lab"}
        d.update(fields)
        return d

    def publish(self, topic: str | None = None, **fields: Any) -> int:
        """Publish a status (retained, QoS 1); returns the PUBACK reason code."""
        info = self.client.publish(topic or self.topic, S.fit(self.doc(**fields)), qos=1, retain=True)
        wait_for(lambda: info.mid in self.acks, 10, f"{self.device}'s PUBACK")
        return self.acks[info.mid]

    def close(self, *, clean: bool = True) -> None:
        self.client.disconnect()
        self.client.loop_stop()
