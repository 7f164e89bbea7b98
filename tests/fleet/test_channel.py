"""The shared-connection extension point (agent/fleet/channel.py) with a real in-process agent and
real mosquitto: a feature subscribes (before or after the connection is up), gets only its messages,
publishes results, and keeps its subscriptions across a broker restart."""
from __future__ import annotations

import queue
import signal

from fleet_helpers import ADMIN, SimDevice, identity
from transport_helpers import agent_config, wait_for

from agent.config import load_config
from agent.runner import Agent
from wire import topics


def test_subscribe_publish_and_resubscribe_after_a_broker_restart(tmp_path, broker, pki):
    cfg = load_config(agent_config(tmp_path / "a", broker.url, pki, keepalive=5))
    agent = Agent(cfg)
    early: queue.Queue = queue.Queue()
    late: queue.Queue = queue.Queue()
    identity(pki, ADMIN)
    admin = SimDevice(broker, pki, ADMIN)
    results: queue.Queue = queue.Queue()
    admin.client.on_message = lambda _c, _u, m: results.put((m.topic, m.payload))
    connects: list[int] = []
    try:
        agent.start()
        ch = agent.channel
        ch.on_connected(lambda: connects.append(1))
        ch.subscribe(topics.device_command_filter("rde", "dev-01"), lambda t, p: early.put((t, p)))
        admin.connect()
        admin.client.subscribe(topics.command_result_filter("rde"), qos=1)
        wait_for(lambda: agent.uploader.link is not None and agent.uploader.link.connected, 15, "the agent online")
        # a subscription made while connected is live at once (the channel hands it to the link)
        ch.subscribe(topics.device_config_topic("rde", "dev-01"), lambda t, p: late.put((t, p)))

        def send_until(q: queue.Queue, topic: str, body: bytes) -> tuple[str, bytes]:
            def got():
                admin.client.publish(topic, body, qos=1)
                try:
                    return q.get(timeout=0.5)
                except queue.Empty:
                    return None
            return wait_for(got, 15, f"{topic} to reach the feature's handler")

        assert send_until(early, topics.command_topic("rde", "dev-01", "c1"), b"one") == ("rde/dev-01/cmd/c1", b"one")
        assert send_until(late, topics.device_config_topic("rde", "dev-01"), b"cfg") == ("rde/dev-01/config", b"cfg")
        assert early.empty()   # the config went only to the config handler
        ch.publish(topics.command_result_topic("rde", "dev-01", "c1"), b'{"ok": true}')

        def ours():  # the agent's real command worker answers c1 too (refused: it is not signed)
            got = results.get(timeout=5)
            return got if got[1] == b'{"ok": true}' else None
        assert wait_for(ours, 10, "the result") == ("rde/dev-01/cmd-result/c1", b'{"ok": true}')

        broker.restart(signal.SIGKILL)     # the broker forgets every session: the link must subscribe again
        before = len(connects)
        wait_for(lambda: len(connects) > before, 30, "the agent to reconnect")
        admin.close()
        admin = SimDevice(broker, pki, ADMIN).connect()
        assert send_until(early, topics.command_topic("rde", "dev-01", "c2"), b"two")[1] == b"two"
        assert send_until(late, topics.device_config_topic("rde", "dev-01"), b"cfg2")[1] == b"cfg2"
    finally:
        assert agent.stop() == []
        try:
            admin.close()
        except Exception:  # noqa: BLE001
            pass
