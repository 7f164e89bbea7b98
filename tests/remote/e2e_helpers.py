"""End-to-end helpers: real agents (subprocesses) with [remote], the administrator's fleet.toml and CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from remote_helpers import ADMIN_PW, Facility, remote_section
from transport_helpers import PKI, REPO, AgentProc, Broker, agent_config, wait_for  # noqa: F401

from agent.remote.state import StateDir

ADMIN = "labedge-admin"


def identity(pki: PKI, name: str) -> tuple[Path, Path]:
    from facility.pki import issue
    if name not in pki.certs:
        pki.certs[name] = issue(pki.ca_dir, name, pki.root / "clients")
    return pki.certs[name]


def remote_agent(root: Path, broker: Broker, pki: PKI, facility: Facility, device: str, *,
                 groups: tuple[str, ...] = ("xrd",), trial_seconds: float = 3) -> AgentProc:
    identity(pki, device)
    cfg = agent_config(root / device, broker.url, pki, device=device)
    cfg.write_text(cfg.read_text() + remote_section(facility.root_pub, groups=groups, trial_seconds=trial_seconds))
    return AgentProc(cfg)


def fleet_toml(root: Path, broker: Broker, pki: PKI, facility: Facility) -> Path:
    cert, key = identity(pki, ADMIN)
    root.mkdir(parents=True, exist_ok=True)
    p = root / "fleet.toml"
    p.write_text("".join(f"{k} = {json.dumps(str(v))}\n" for k, v in {
        "broker": broker.url, "ca_file": pki.ca, "cert_file": cert, "key_file": key,
        "signing_key": facility.folder.admin_key("admin"), "trust_root": facility.root_pub,
        "catalog_url": root / "catalog.sqlite3"}.items()))
    return p


def fleet(*args: str, passphrase: str | None = ADMIN_PW, timeout: float = 90) -> subprocess.CompletedProcess:
    """`labedge fleet ...` as a user runs it; the passphrase goes through a pipe, never argv."""
    fds: tuple[int, ...] = ()
    extra: list[str] = []
    if passphrase is not None:
        r, w = os.pipe()
        os.write(w, (passphrase + "\n").encode())
        os.close(w)
        fds, extra = (r,), ["--passphrase-fd", str(r)]
    try:
        return subprocess.run([sys.executable, "-m", "agent", "fleet", *args, *extra], pass_fds=fds,
                              capture_output=True, text=True, cwd=REPO, timeout=timeout,
                              env={k: v for k, v in os.environ.items() if "PASSPHRASE" not in k})
    finally:
        for fd in fds:
            os.close(fd)


def fleet_pipe_args(passphrase: str = ADMIN_PW) -> tuple[list[str], tuple[int, ...]]:
    r, w = os.pipe()
    os.write(w, (passphrase + "\n").encode())
    os.close(w)
    return ["--passphrase-fd", str(r)], (r,)


def fragment(root: Path, text: str, name: str = "push.toml") -> Path:
    p = root / name
    p.write_text(text)
    return p


def config_status(fleet_cfg: Path) -> dict:
    p = fleet("config", "status", "--config", str(fleet_cfg), "--json", passphrase=None)
    assert p.returncode == 0, p.stderr
    return {d["device"]: d for d in json.loads(p.stdout)["devices"]}


def device_events(agent: AgentProc) -> list[dict]:
    from agent.config import load_config
    return StateDir(load_config(agent.config, check_watch_folders=False, remote=False).state_dir).audit_lines()


class Observer:
    """Follows every device's status in process, as a receiver identity (ACL: read +/status), so it never
    takes the administrator's session (one client id per certificate) while `fleet config push` runs."""

    def __init__(self, broker: Broker, pki: PKI, root: Path) -> None:
        from facility.fleet_config import FleetConfig
        from facility.remote.session import AdminSession
        cert, key = pki.certs["labedge-receiver-b"]
        cfg = FleetConfig(source=root / "observer.toml", broker=broker.url, ca_file=pki.ca, cert_file=cert,
                          key_file=key, client_id="labedge-receiver-b")
        self.session = AdminSession(cfg)
        self.session.connect()

    def config(self, device: str) -> dict:
        from facility.remote.session import config_section
        doc = self.session.statuses().get(device) or {}
        return {**config_section(doc), "online": doc.get("online")} if doc else {}

    def wait(self, device: str, what: str, timeout: float = 30, **want: object) -> dict:
        return wait_for(lambda: (c := self.config(device)) and all(c.get(k) == v for k, v in want.items()) and c,
                        timeout, f"{device}: {what} ({want})")

    def retained(self, topic: str) -> bytes:
        """The retained message on ``topic`` now (a fresh subscription as this identity)."""
        got: list[bytes] = []
        link = self.session.link
        link.client.message_callback_add(topic, lambda _c, _u, m: got.append(bytes(m.payload)))
        link.client.subscribe(topic, qos=1)
        wait_for(lambda: got, 10, f"the retained message on {topic}")
        return got[0]

    def close(self) -> None:
        self.session.stop()
