"""Authentication against the shipped broker config (real mosquitto, mTLS): every intruder is refused
with a clear message, and nothing reaches the receiver's store.

Cases: no certificate, a certificate from another CA, an expired certificate, a device publishing
under another device's id (ACL -> PUBACK 0x87), and no plaintext anywhere (config and a TLS-less port).
"""
from __future__ import annotations

import datetime as dt
import os
import re
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from agent.config import ConfigError, load_config
from agent.runner import Agent
from agent.status import build_status
from facility import pki as P
from wire.tls import probe
from transport_helpers import MOSQUITTO, ReceiverProc, agent_config, free_port, make_packages, stored, wait_for

UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def intruders(tmp_path_factory, pki) -> dict[str, tuple[Path, Path]]:
    """Certificates the broker must refuse, next to the fixture's good ones."""
    root = tmp_path_factory.mktemp("intruders")
    P.init_ca(root / "evil-ca", cn="some other CA")
    now = dt.datetime.now(UTC)
    return {
        # the same CN as a real device, but signed by a CA the broker does not trust
        "other-ca": P.issue(root / "evil-ca", "dev-01", root / "evil"),
        # signed by the right CA, expired yesterday
        "expired": P.issue(pki.ca_dir, "dev-01", root / "old", not_before=now - dt.timedelta(days=30),
                           not_after=now - dt.timedelta(days=1)),
    }


def problems(cfg_path: Path) -> str:
    st = build_status(load_config(cfg_path, check_watch_folders=False))
    return " | ".join(p["message"] for p in st.get("problems", []))


def refused_run(tmp_path: Path, broker, pki, pattern: str, *, url: str | None = None,
                device: str = "dev-01", **upload: object) -> tuple[str, dict, Path]:
    """Queue a package, run the agent until `labedge status` shows a problem matching ``pattern``.

    Returns (the problem text, the package counts, the receiver's store)."""
    store = tmp_path / "store"
    rx = ReceiverProc(tmp_path / "rx", broker, pki, store).start_connected()
    cfg_path = agent_config(tmp_path / "agent", url or broker.url, pki, device=device, **upload)
    make_packages(cfg_path, [40_000])
    agent = Agent(load_config(cfg_path))
    agent.start()
    try:
        last = [""]

        def shown() -> str | None:
            last[0] = problems(cfg_path)
            return last[0] if re.search(pattern, last[0]) else None
        try:
            text = wait_for(shown, 60, f"status to show a problem matching {pattern!r}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; `labedge status` said instead: {last[0]!r}") from None
        counts = agent.store.counts()
    finally:
        assert agent.stop() == []
        rx.kill()
    assert "Traceback" not in text
    assert stored(store) == {}, "an intruder's package reached the receiver's store"
    assert not list(store.glob(".partial/*/*")), "an intruder's transfer was started at the receiver"
    return text, counts, store


def broker_log(broker) -> str:
    return broker.log.read_text(errors="replace")


# ------------------------------------------------------------------ no certificate

def test_client_without_certificate_is_refused(broker, pki):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the broker, presents nothing
    ctx.load_verify_locations(str(pki.ca))
    why = probe("localhost", broker.port, ctx, Path("/nonexistent/none.pem"), pki.ca)
    assert why is not None and "rejected this device's certificate" in why, why
    wait_for(lambda: "peer did not return a certificate" in broker_log(broker), 10, "the broker's log line")
    assert "New client connected" not in broker_log(broker)


def test_agent_without_certificate_file_says_which_file(tmp_path, broker, pki):
    missing = tmp_path / "nowhere" / "dev-01.pem"
    text, counts, _ = refused_run(tmp_path, broker, pki, r"cert_file .*file not found",
                                  cert_file=str(missing), key_file=str(missing.with_suffix(".key")))
    assert str(missing) in text
    assert counts["queued"] == 1 and counts["delivered"] == 0  # kept, visibly waiting
    st = build_status(load_config(tmp_path / "agent" / "agent.toml", check_watch_folders=False))
    assert "cannot read the device certificate" in st["certificate"]["warning"]


# ------------------------------------------------------------------ wrong CA, expired

def test_certificate_from_another_ca_is_refused(tmp_path, broker, pki, intruders):
    cert, key = intruders["other-ca"]
    text, counts, _ = refused_run(tmp_path, broker, pki, r"certificate", cert_file=str(cert), key_file=str(key))
    assert "the broker rejected this device's certificate" in text and str(cert) in text, text
    assert "not signed by the CA the broker trusts" in text, text
    assert counts["queued"] == 1 and counts["delivered"] == 0
    assert "certificate verify failed" in broker_log(broker)
    assert "as dev-01" not in broker_log(broker)  # never got as far as an MQTT session


def test_expired_certificate_is_refused_and_says_when(tmp_path, broker, pki, intruders):
    cert, key = intruders["expired"]
    text, counts, _ = refused_run(tmp_path, broker, pki, r"expired", cert_file=str(cert), key_file=str(key))
    day = P.cert_info(cert)["not_after"][:10]
    assert f"the broker rejected this device's certificate (expired on {day}" in text and "renew" in text, text
    assert counts["queued"] == 1 and counts["delivered"] == 0
    assert "certificate verify failed" in broker_log(broker)
    st = build_status(load_config(tmp_path / "agent" / "agent.toml", check_watch_folders=False))
    assert "EXPIRED" in st["certificate"]["warning"]


# ------------------------------------------------------------------ impersonation via the ACL

def test_device_cannot_publish_under_another_devices_id(tmp_path, broker, pki):
    # dev-01's genuine certificate, but configured as dev-02: every topic it writes is rde/dev-02/...
    cert, key = pki.certs["dev-01"]
    text, counts, _ = refused_run(tmp_path, broker, pki, r"not authori[sz]ed", device="dev-02",
                                  cert_file=str(cert), key_file=str(key))
    assert "0x87" in text and "rde/dev-02/up/" in text and "CN" in text, text
    assert counts["delivered"] == 0 and counts["failed"] == 1  # failed visibly, not dropped
    # the broker bound the session to the certificate, whatever client id the agent asked for
    assert "as dev-01 " in broker_log(broker) and "as dev-02 " not in broker_log(broker)
    st = build_status(load_config(tmp_path / "agent" / "agent.toml", check_watch_folders=False))
    assert "differs from device_id" in st["certificate"]["warning"]


def test_device_cannot_read_other_devices_data_or_acks(broker, pki):
    """A device may SUBSCRIBE to anything, but the broker delivers only its own down topic to it."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    got: dict[str, list[str]] = {"dev-01": [], "dev-02": [], "labedge-receiver": []}
    subs: list[object] = []

    def client(name: str) -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        ctx.load_cert_chain(*map(str, pki.certs[name]))
        c.tls_set_context(ctx)
        c.on_message = lambda _c, _u, m: got[name].append(m.topic)
        c.on_subscribe = lambda *a: subs.append(a)
        c.connect("localhost", broker.port)
        c.loop_start()
        return c

    pid = "20261122T000000000Z-00000000"
    dev, spy, rx = client("dev-01"), client("dev-02"), client("labedge-receiver")
    try:
        spy.subscribe([("#", 1), ("rde/+/up/#", 1), ("rde/dev-01/down/#", 1), ("rde/dev-02/down/#", 1)])
        rx.subscribe("rde/+/up/#", qos=1)
        dev.subscribe("rde/dev-01/down/#", qos=1)
        wait_for(lambda: len(subs) == 3, 10, "SUBACKs")
        # PUBACK means the broker has already queued the message for every subscriber allowed to read it
        dev.publish(f"rde/dev-01/up/{pid}/offer", b"{}", qos=1).wait_for_publish(10)
        rx.publish(f"rde/dev-01/down/{pid}", b"{}", qos=1).wait_for_publish(10)
        rx.publish(f"rde/dev-02/down/{pid}", b"{}", qos=1).wait_for_publish(10)
        wait_for(lambda: got["dev-02"] and got["dev-01"], 10, "each device's own down message")
        assert got["labedge-receiver"] == [f"rde/dev-01/up/{pid}/offer"]
        assert got["dev-01"] == [f"rde/dev-01/down/{pid}"]
        # the spy's queue is FIFO: its own message arrived, the others' were never queued for it
        # (one copy per matching subscription: '#' and its own filter overlap)
        assert set(got["dev-02"]) == {f"rde/dev-02/down/{pid}"}, got["dev-02"]
    finally:
        for c in (dev, spy, rx):
            c.loop_stop()
            c.disconnect()


# ------------------------------------------------------------------ never plaintext

@pytest.mark.parametrize("url", ["mqtt://localhost:1883", "tcp://localhost:1883", "ws://localhost:8080",
                                 "localhost:8883", "mqtts://"])
def test_non_tls_broker_url_is_a_config_error(tmp_path, pki, url):
    cfg = agent_config(tmp_path, url, pki)
    with pytest.raises(ConfigError) as ei:
        load_config(cfg)
    assert "upload.broker" in str(ei.value) and "mqtts://" in str(ei.value)


@pytest.fixture()
def plaintext_broker(tmp_path):
    if not MOSQUITTO.exists():
        pytest.skip("mosquitto is not installed at /usr/sbin/mosquitto (apt-get install mosquitto)")
    port = free_port()
    log = tmp_path / "plain.log"
    conf = tmp_path / "plain.conf"
    # as root, mosquitto would switch to user 'mosquitto', which cannot write the log in tmp_path
    user = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(f"{user}listener {port} 127.0.0.1\nallow_anonymous true\nlog_dest file {log}\n"
                    "log_type all\nconnection_messages true\n")
    proc = subprocess.Popen([str(MOSQUITTO), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False
    wait_for(up, 15, "the plaintext broker")
    wait_for(log.exists, 15, "the plaintext broker's log")
    yield port, log
    proc.terminate()
    proc.wait(10)


def test_tls_less_listener_fails_clearly_and_nothing_goes_in_clear(tmp_path, broker, pki, plaintext_broker):
    # A plaintext MQTT listener resets the connection on our ClientHello (ConnectionResetError in the
    # handshake). "cannot reach host:port (Connection reset by peer)" reads like a network fault; the
    # message must say that the port does not speak TLS (agent/transport/tls.py::describe_failure).
    port, log = plaintext_broker
    text, counts, _ = refused_run(tmp_path, broker, pki, r"TLS", url=f"mqtts://localhost:{port}")
    assert "does not speak TLS" in text and f"localhost:{port}" in text, text
    assert counts["queued"] == 1 and counts["delivered"] == 0
    # the plaintext broker never saw an MQTT CONNECT: the client did not fall back
    seen = log.read_text(errors="replace")
    assert "New connection from" in seen  # the agent did reach this port ...
    assert "New client connected" not in seen  # ... and never sent a plaintext CONNECT


def test_loopback_render_changes_only_paths_port_and_user(tmp_path):
    """The tests and the demo run the shipped config: only paths, the port and the user may differ."""
    from installer.mosquitto.render import render_conf, shipped_conf
    rendered = render_conf(port=18883, ca=tmp_path / "ca.pem", cert=tmp_path / "b.pem", key=tmp_path / "b.key",
                           acl=tmp_path / "a.acl", data_dir=tmp_path / "d", log_file=tmp_path / "l.log")
    changed = {"listener", "cafile", "certfile", "keyfile", "acl_file", "persistence_location", "log_dest", "user",
               "plugin", "plugin_opt_share_users", "crlfile"}
    settings = [ln for ln in shipped_conf().splitlines() if ln and not ln.startswith("#")]
    assert {"require_certificate true", "use_identity_as_username true", "use_username_as_clientid true",
            "allow_anonymous false", "tls_version tlsv1.2", "set_tcp_nodelay true", "listener 8883"} <= set(settings)
    assert sum(ln.startswith("listener ") for ln in settings) == 1  # no second (plaintext) listener
    for ln in settings:
        if ln.split(" ", 1)[0] not in changed:
            assert ln in rendered.splitlines(), f"render dropped or changed {ln!r}"
    assert "listener 18883 127.0.0.1" in rendered.splitlines()
