"""The device status channel against real mosquitto with the shipped ACL: a real agent publishes
its status within 5 s, kill -9 marks it offline through the will within keepalive x 1.5, a clean
stop says "stopped", and the ACL keeps devices and the administrator in their lanes."""
from __future__ import annotations

import signal
import time

from fleet_helpers import ADMIN, SimDevice, identity, write_fleet_toml
from transport_helpers import AgentProc, agent_config, make_packages, wait_for

from facility.fleet.admin_link import FleetWatcher, snapshot
from facility.fleet_config import load_fleet_config
from wire import topics

KEEPALIVE = 5


def _watch(tmp_path, broker, pki) -> FleetWatcher:
    w = FleetWatcher(load_fleet_config(write_fleet_toml(tmp_path / "admin", broker, pki)))
    w.start()
    wait_for(lambda: w.connected, 15, "the admin watcher to connect")
    return w


def test_status_within_5s_then_will_on_kill9(tmp_path, broker, pki):
    w = _watch(tmp_path, broker, pki)
    agent = AgentProc(agent_config(tmp_path / "a", broker.url, pki, keepalive=KEEPALIVE, status_interval=2))
    try:
        t0 = time.monotonic()
        agent.start()
        doc = wait_for(lambda: w.statuses().get("dev-01", ({}, None))[0].get("online") and
                       w.statuses()["dev-01"][0], 5, "dev-01's status (within 5 s of the agent start)")
        assert time.monotonic() - t0 < 5.0
        assert doc["v"] == 1 and doc["agent_version"] and doc["interval"] == 2
        assert doc["queue"]["failed"] == 0 and doc["host"] and doc["os"]
        assert doc["cert_not_after"] > time.time() + 30 * 86400
        assert doc["config"]["version"] and len(doc["config"]["version"]) == 12
        # the PC's own state: its first status may still say "offline" (its facts lag a second), then not
        wait_for(lambda: w.statuses()["dev-01"][0].get("pc_state") in ("up to date", "working"), 5,
                 "the PC's own state in its status")
        assert w.statuses()["dev-01"][0]["pc_reason"]
        assert doc["translators"].get("rigaku") and doc["spool"]["disk_free"] > 0 and doc["paused"] is None
        # heartbeats keep coming although nothing changes
        first = doc["seq"]
        wait_for(lambda: w.statuses()["dev-01"][0].get("seq", 0) >= first + 1, 6, "a heartbeat")

        agent.kill(signal.SIGKILL)
        t_kill = time.monotonic()
        off = wait_for(lambda: not w.statuses()["dev-01"][0]["online"] and w.statuses()["dev-01"][0],
                       KEEPALIVE * 1.5, "the will to mark dev-01 offline")
        assert time.monotonic() - t_kill <= KEEPALIVE * 1.5
        assert off["reason"] == "connection lost" and off["connected_at"] is not None
        # retained: a tool that connects later still sees it offline
        cfg = load_fleet_config(tmp_path / "admin" / "fleet.toml")
        assert snapshot(cfg)["dev-01"][0]["online"] is False
    finally:
        agent.kill()
        w.stop()


def test_publishes_on_change_and_says_stopped_on_a_clean_stop(tmp_path, broker, pki):
    w = _watch(tmp_path, broker, pki)
    cfg = agent_config(tmp_path / "a", broker.url, pki, keepalive=KEEPALIVE, status_interval=600)
    agent = AgentProc(cfg)
    try:
        agent.start()
        first = wait_for(lambda: w.statuses().get("dev-01", ({}, None))[0].get("online") and
                         w.statuses()["dev-01"][0], 10, "dev-01 online")
        assert first["queue"]["queued"] == 0
        make_packages(cfg, [1000])   # no receiver runs: it stays queued, and the status says so at once
        changed = wait_for(lambda: w.statuses()["dev-01"][0]["queue"]["queued"] == 1 and w.statuses()["dev-01"][0],
                           5, "a status with the queued package (long before the 600 s heartbeat)")
        assert changed["seq"] > first["seq"]
        agent.kill(signal.SIGTERM)
        off = wait_for(lambda: not w.statuses()["dev-01"][0]["online"] and w.statuses()["dev-01"][0], 10,
                       "dev-01's own offline message")
        assert off["reason"] == "stopped" and off["sent_at"] is not None
    finally:
        agent.kill()
        w.stop()


def test_acl_devices_write_only_their_own_status(tmp_path, broker, pki):
    w = _watch(tmp_path, broker, pki)
    honest = SimDevice(broker, pki, "dev-01").connect()
    forger = SimDevice(broker, pki, "dev-02").connect()
    try:
        assert honest.publish() == 0
        wait_for(lambda: "dev-01" in w.statuses(), 5, "dev-01's status")
        # dev-02 tries to write dev-01's status: the broker refuses (0x87) and nothing changes
        rc = forger.publish(topic=topics.status_topic("rde", "dev-01"), device="dev-01", host="forged")
        assert rc == 0x87
        assert forger.publish(queue={"queued": 0, "uploading": 0, "delivered": 0, "failed": 0}) == 0
        wait_for(lambda: "dev-02" in w.statuses(), 5, "dev-02's own status")
        assert w.statuses()["dev-01"][0]["host"] == "dev-01.lab"
        # a device may not write commands or configuration, nor the administrator's topics
        assert forger.publish(topic=topics.command_topic("rde", "dev-01", "x1")) == 0x87
        assert forger.publish(topic=topics.device_config_topic("rde", "dev-01")) == 0x87
        assert forger.publish(topic=topics.group_config_topic("rde", "all")) == 0x87
    finally:
        honest.close()
        forger.close()
        w.stop()


def test_acl_admin_reads_status_but_writes_none(tmp_path, broker, pki):
    identity(pki, ADMIN)
    admin = SimDevice(broker, pki, ADMIN)  # the admin's certificate, speaking MQTT directly
    seen: list[str] = []
    admin.client.on_message = lambda _c, _u, m: seen.append(m.topic)
    admin.connect()
    dev = SimDevice(broker, pki, "dev-01").connect()
    try:
        admin.client.subscribe("rde/#", qos=1)  # asks for everything; the ACL delivers only what it may read
        wait_for(lambda: admin.client.is_connected(), 5, "the admin connection")
        assert admin.publish(topic=topics.status_topic("rde", "dev-01"), device="dev-01") == 0x87
        assert admin.publish(topic="rde/dev-01/up/20260101T000000Z-aaaa/offer") == 0x87
        assert admin.publish(topic="rde/dev-01/down/20260101T000000Z-aaaa") == 0x87
        assert admin.publish(topic=topics.command_topic("rde", "dev-01", "c1")) in (0, 0x10)
        dev.publish(topic="rde/dev-01/up/20261201T000000000Z-0000abcd/offer")
        dev.publish()
        wait_for(lambda: "rde/dev-01/status" in seen, 5, "the admin to read dev-01's status")
        assert all(t.endswith("/status") for t in seen), seen   # never a device's upload
    finally:
        admin.close()
        dev.close()


def test_a_watcher_yields_the_shared_admin_identity_to_a_one_shot_tool(tmp_path, broker, pki):
    """The dashboard and `fleet command --wait` share one certificate and so one session: the watcher
    took it back within milliseconds and every command run beside the dashboard failed with
    "connection to the broker lost". Now it waits before reconnecting, then comes back by itself."""
    from facility.fleet.admin_link import make_link
    cfg = load_fleet_config(write_fleet_toml(tmp_path / "admin", broker, pki))
    w = FleetWatcher(cfg, yield_seconds=3.0)
    w.start()
    tool = make_link(cfg, lambda _m: None)
    try:
        wait_for(lambda: w.connected, 15, "the admin watcher to connect")
        tool.connect_once()  # takes the session, as `labedge fleet command` does
        until = time.monotonic() + 2.0
        while time.monotonic() < until:  # what a command waiting for its results needs: the session kept
            assert tool.loop(timeout=0.05), f"the watcher took the session back: {tool.last_error}"
        assert not w.connected and "reconnecting in 3 s" in (w.last_error or "")
        assert "another admin tool" in (w.why_disconnected or "")   # what the dashboard shows meanwhile
        tool.close()
        wait_for(lambda: w.connected, 15, "the watcher to reconnect after the tool is done")
    finally:
        tool.close()
        w.stop()
