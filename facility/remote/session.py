"""The administrator's MQTT session for remote config: follow every device's status, publish documents.

Devices report their remote-config state in the ``config`` section of their retained status document
(wire/status.py): ``desired_version``, ``applied_version``, ``state``, ``error`` (the reason) and
``event_version`` (the version that state is about), and their ``groups``.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Callable

import paho.mqtt.client as mqtt

from facility.fleet_config import FleetConfig
from wire import topics
from wire.link import Link, LinkSettings
from wire.protocol import ProtocolError
from wire.tls import TransportError, client_context

log = logging.getLogger(__name__)
MAX_STATUS_BYTES = 64 * 1024


class AdminSession(threading.Thread):
    def __init__(self, cfg: FleetConfig) -> None:
        super().__init__(name="remote-admin", daemon=True)
        self.cfg = cfg
        self._lock = threading.Lock()
        self._status: dict[str, dict[str, Any]] = {}
        self._outbox: list[tuple[str, bytes, bool]] = []
        self._acked: set[int] = set()
        self._sent: dict[int, str] = {}
        self._halt = threading.Event()
        self.changed = threading.Condition(self._lock)
        s = LinkSettings(host=cfg.host, port=cfg.port, client_id=cfg.client_id, ca_file=cfg.ca_file,
                         cert_file=cfg.cert_file, key_file=cfg.key_file, keepalive=30, session_expiry=0,
                         clean_start=True, subscriptions=[(topics.status_filter(cfg.topic_prefix), 1)],
                         connect_timeout=10.0, backoff_initial=0.5, backoff_max=5.0)
        self.link = Link(s, client_context(cfg.ca_file, cfg.cert_file, cfg.key_file), on_message=self._on_message,
                         on_puback=self._on_puback)
        self.denied: list[str] = []

    # ------------------------------------------------------------------ MQTT thread
    def _on_message(self, msg: mqtt.MQTTMessage) -> None:
        try:
            kind, device, _ = topics.parse_fleet_topic(self.cfg.topic_prefix, msg.topic)
        except ProtocolError:
            return
        if kind != "status" or not msg.payload or len(msg.payload) > MAX_STATUS_BYTES:
            return
        try:
            doc = json.loads(bytes(msg.payload).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return
        if isinstance(doc, dict):
            with self.changed:
                self._status[device] = doc
                self.changed.notify_all()

    def _on_puback(self, mid: int, reason: int) -> None:
        with self.changed:
            topic = self._sent.pop(mid, None)
            if reason >= 0x80 and topic:
                self.denied.append(f"{topic} (reason {reason:#x})")
            self._acked.add(mid)
            self.changed.notify_all()

    def run(self) -> None:
        while not self._halt.is_set():
            if not self.link.connected and not self.link.ensure_connected(self._halt.wait):
                break
            with self._lock:
                out, self._outbox = self._outbox, []
            for topic, payload, retain in out:
                mid = self.link.publish(topic, payload, qos=1, retain=retain)
                if mid is None:
                    with self._lock:
                        self._outbox.insert(0, (topic, payload, retain))
                    break
                with self._lock:
                    self._sent[mid] = topic
            self.link.loop(timeout=0.05)
        self.link.close()

    # ------------------------------------------------------------------ callers
    def connect(self) -> None:
        """Connect once (raises TransportError in words), then follow in the background."""
        self.link.connect_once()
        self.start()

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(5)

    def publish(self, topic: str, payload: bytes, *, retain: bool = True, timeout: float = 10.0) -> None:
        """Publish and wait for the broker's PUBACK; a denied publish (ACL) raises in words."""
        with self.changed:
            before = len(self._acked)
            self._outbox.append((topic, payload, retain))
            deadline = time.monotonic() + timeout
            while len(self._acked) == before:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TransportError(f"the broker did not confirm the publish to {topic} within {timeout:.0f} s")
                self.changed.wait(left)
            if self.denied:
                raise TransportError(f"the broker refused the publish to {self.denied[-1]}: the ACL must let "
                                     f"{self.cfg.client_id!r} write config topics (installer/mosquitto/labedge.acl)")

    def statuses(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._status)

    def settle(self, quiet: float = 0.5, max_wait: float = 5.0) -> dict[str, dict[str, Any]]:
        """Wait until retained statuses stop arriving (after connect)."""
        start = time.monotonic()
        last_n, last_change = -1, time.monotonic()
        while time.monotonic() - start < max_wait:
            n = len(self.statuses())
            if n != last_n:
                last_n, last_change = n, time.monotonic()
            elif time.monotonic() - last_change >= quiet:
                break
            time.sleep(0.05)
        return self.statuses()

    def wait_until(self, cond: Callable[[dict[str, dict[str, Any]]], bool], timeout: float,
                   abort: Callable[[], bool] = lambda: False) -> bool:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                if cond(dict(self._status)):
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or abort():
                    return False
                self.changed.wait(min(left, 0.5))


def config_section(doc: dict[str, Any]) -> dict[str, Any]:
    c = doc.get("config")
    return c if isinstance(c, dict) else {}


def outcome_for(doc: dict[str, Any] | None, version: int) -> tuple[str, str] | None:
    """What a device did with ``version``: ('applied'|'refused'|'rolled_back', reason), or None (not yet)."""
    if not doc:
        return None
    c = config_section(doc)
    try:
        applied = int(c.get("applied_version") or 0)
        event = int(c.get("event_version") or 0)
    except (TypeError, ValueError):
        return None
    state = c.get("state")
    if state == "applied" and applied >= version:
        return "applied", ""
    if event == version and state in ("refused", "rolled_back"):
        return str(state), str(c.get("error") or "")
    if applied > version:
        return "applied", f"now at version {applied}"
    return None
