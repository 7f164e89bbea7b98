"""Certificate renewal without a visit, and revocation, against the shipped broker config (real mosquitto).

- A device whose certificate enters its renewal window gets a new one over its own mTLS session,
  tests it, switches, and every package queued around the switch is delivered exactly once.
- A revoked device is refused at its next connect (the broker's CRL), and says so in its status.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys

from cryptography import x509

from fleetops_helpers import RenewalProc, device_identity
from transport_helpers import (REPO, AgentProc, ReceiverProc, agent_config, assert_exactly_once, db_counts,
                               make_packages, wait_for)
from wire.identity import cert_info
from wire.tls import client_context, probe


def test_renewal_before_expiry_switches_certificates_without_losing_an_upload(tmp_path, broker, pki) -> None:
    ident = device_identity(pki, "dev-renew", tmp_path / "id", days_left=10)  # inside renew_days = 30
    cert_p, key_p = ident.certs["dev-renew"]
    old_serial = cert_info(cert_p)["serial"]
    old_key = key_p.read_bytes()
    store = tmp_path / "store"
    rx = ReceiverProc(tmp_path / "rx", broker, pki, store).start_connected()
    # rate-limited so that uploads are still going on when the certificates are switched
    cfg = agent_config(tmp_path / "agent", broker.url, ident, device="dev-renew", rate_limit=150_000, parallel=1)
    expected = make_packages(cfg, [400_000, 400_000, 400_000, 300_000])
    agent = AgentProc(cfg).start()
    svc = None
    try:
        # the renewal service starts late: the device keeps uploading with its old certificate meanwhile
        wait_for(lambda: "certificate renewal: sent request" in agent.text(), 30, "the renewal request")
        svc = RenewalProc(tmp_path / "svc", broker, pki).start_connected()
        wait_for(lambda: cert_info(cert_p)["serial"] != old_serial, 60, "the new certificate on disk")
        wait_for(lambda: "certificate renewed" in agent.text(), 30, "the switch to the new certificate")
        at_switch = db_counts(cfg)
        assert at_switch["delivered"] < len(expected), f"the switch came after the uploads: {at_switch}"
        more = make_packages(cfg, [70_000], seed=2)  # queued after the switch
        expected.update(more)
        wait_for(lambda: db_counts(cfg).get("delivered") == len(expected), 60, "every package delivered")
        st = agent.status()
    finally:
        agent.kill(signal.SIGTERM)
        if svc is not None:
            svc.kill(signal.SIGTERM)
        rx.kill()
    info = cert_info(cert_p)
    assert info["cn"] == "dev-renew" and info["days_left"] >= 364, info
    assert key_p.read_bytes() != old_key, "the renewed certificate must come with a new key"
    assert oct(key_p.stat().st_mode & 0o777) == "0o600"
    assert not list(cert_p.parent.glob("*.old")) and not list(cert_p.parent.glob("*.new")), \
        "the old pair is removed once the new one works; nothing half-done is left"
    assert st["certificate"]["days_left"] >= 364 and not st["certificate"]["warning"]
    assert not [p for p in st["problems"] if p["key"].startswith("cert:")], st["problems"]
    assert_exactly_once(store, expected)
    assert "renewed the certificate of dev-renew" in svc.text()
    assert "connected to" in agent.text().split("certificate renewal: the new certificate")[1], \
        "the agent must reconnect with the new certificate"


def test_renewal_is_refused_for_a_revoked_device_and_a_revoked_device_is_refused_at_connect(
        tmp_path, broker, pki) -> None:
    ident = device_identity(pki, "dev-revoked", tmp_path / "id", days_left=10)
    cert_p, key_p = ident.certs["dev-revoked"]
    ctx = client_context(pki.ca, cert_p, key_p)
    assert probe("localhost", broker.port, ctx, cert_p, pki.ca) is None, "the device is accepted before"
    out = subprocess.run([sys.executable, "-m", "agent", "pki", "revoke", "dev-revoked", "--ca", str(pki.ca_dir)],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    broker.proc.send_signal(signal.SIGHUP)  # mosquitto reloads certificates and the CRL
    wait_for(lambda: probe("localhost", broker.port, ctx, cert_p, pki.ca) is not None, 15,
             "the broker to refuse the revoked certificate")
    cfg = agent_config(tmp_path / "agent", broker.url, ident, device="dev-revoked")
    agent = AgentProc(cfg).start()
    try:
        def refused() -> str | None:
            st = agent.status()
            text = " | ".join(p["message"] for p in st.get("problems", []))
            return text if "rejected this device's certificate" in text else None
        text = wait_for(refused, 40, "the status to say the broker refuses the certificate")
    finally:
        agent.kill(signal.SIGTERM)
    assert "revoked" in text and "Traceback" not in text
    assert "connected to" not in agent.text()
    # the administrator's fleet view says so (fleet.toml ca_dir)
    from fleetops_helpers import Facility
    fac = Facility(tmp_path / "facility", broker, pki)
    out = subprocess.run([sys.executable, "-m", "agent", "fleet", "status", "--config", str(fac.fleet_toml), "--json"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    line = next(d for d in json.loads(out.stdout)["devices"] if d["device"] == "dev-revoked")
    assert line["state"] != "ok" and line["reasons"][0]["code"] == "revoked", line
    assert "certificate revoked" in line["why"]
    # the other devices are untouched by the CRL
    good_cert, good_key = pki.certs["dev-02"]
    assert probe("localhost", broker.port, client_context(pki.ca, good_cert, good_key), good_cert, pki.ca) is None


def test_renew_certificate_command_renews_a_certificate_that_is_not_due_yet(tmp_path, broker, pki) -> None:
    from fleetops_helpers import Facility, with_trust_root
    fac = Facility(tmp_path / "facility", broker, pki)
    ident = device_identity(pki, "dev-cmd", tmp_path / "id", days_left=200)  # far from renew_days = 30
    cert_p, _ = ident.certs["dev-cmd"]
    old_serial = cert_info(cert_p)["serial"]
    svc = RenewalProc(tmp_path / "svc", broker, pki).start_connected()
    cfg = with_trust_root(agent_config(tmp_path / "agent", broker.url, ident, device="dev-cmd"), fac.keys.root_pub)
    agent = AgentProc(cfg).start()
    try:
        wait_for(lambda: "connected to " in agent.text(), 30, "the agent to connect")
        assert "certificate renewal: sent request" not in agent.text(), "renewed although not due"
        out = fac.command("dev-cmd", "renew-certificate", "--wait", "40")
    finally:
        agent.kill(signal.SIGTERM)
        svc.kill(signal.SIGTERM)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "dev-cmd: done: certificate renewed: valid for 365 more days" in out.stdout
    assert cert_info(cert_p)["serial"] != old_serial
