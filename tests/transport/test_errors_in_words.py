"""Connection and authorisation failures become plain sentences (and a denied package fails once)."""
from __future__ import annotations

import datetime as dt

import pytest

from wire.link import Link, LinkSettings
from facility.pki import init_ca, issue
from wire.tls import TransportError, client_context
from transport_helpers import AgentProc, agent_config, db_counts, free_port, make_packages, wait_for


def _connect(pki, port: int, cert, key, ca=None) -> str:
    ca = ca or pki.ca
    link = Link(LinkSettings(host="localhost", port=port, client_id="dev-01", ca_file=ca, cert_file=cert,
                             key_file=key, connect_timeout=10), client_context(ca, cert, key),
                on_message=lambda m: None)
    with pytest.raises(TransportError) as exc:
        link.connect_once()
    link.close()
    return str(exc.value)


def test_unreachable_broker(pki):
    port = free_port()
    msg = _connect(pki, port, *pki.certs["dev-01"])
    assert msg.startswith(f"cannot reach localhost:{port} (connection refused"), msg


def test_broker_not_signed_by_configured_ca(tmp_path, broker, pki):
    other = init_ca(tmp_path / "other-ca", cn="some other CA")
    msg = _connect(pki, broker.port, *pki.certs["dev-01"], ca=other / "ca.pem")
    assert "the broker's certificate is not signed by the configured CA" in msg, msg


def test_expired_device_certificate(tmp_path, broker, pki):
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=10)
    cert, key = issue(pki.ca_dir, "dev-01", tmp_path / "old", not_before=past - dt.timedelta(days=30),
                      not_after=past)
    msg = _connect(pki, broker.port, cert, key)
    assert msg.startswith("the broker rejected this device's certificate (expired on "
                          f"{past:%Y-%m-%d}"), msg


def test_publishing_under_another_device_id_fails_the_package_with_0x87(tmp_path, broker, pki):
    # device_id says dev-02 but the certificate is dev-01's: the ACL denies rde/dev-02/up/#.
    config = agent_config(tmp_path / "agent", broker.url, pki, device="dev-01", parallel=1)
    config.write_text(config.read_text().replace('device_id = "dev-01"', 'device_id = "dev-02"'))
    make_packages(config, [1000, 1000])
    agent = AgentProc(config).start()
    try:
        wait_for(lambda: db_counts(config).get("failed") == 1, 60, "the denied package to fail")
        st = agent.status()
    finally:
        agent.kill()
    (failed,) = st["failed"]
    assert "not authorized (0x87)" in failed["error"] and "dev-02" in failed["error"], failed
    # no retry storm: the second package waits (paused), it is not failed a moment later
    assert st["packages"]["failed"] == 1 and st["packages"]["queued"] == 1
