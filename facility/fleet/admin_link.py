"""The administrator's MQTT connection (fleet.toml's identity): read every device's status.

:func:`snapshot` connects once and collects the retained documents (``labedge fleet status``);
:class:`FleetWatcher` keeps a connection open and follows changes (``--watch``, the dashboard).
The broker binds the client id to the certificate CN, so two admin tools with ONE certificate take
the session from each other; the watcher then simply reconnects (docs/facility.md)."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

import paho.mqtt.client as mqtt

from facility.fleet_config import FleetConfig
from wire import status as S
from wire import topics
from wire.link import Link, LinkSettings
from wire.protocol import ProtocolError
from wire.tls import client_context

log = logging.getLogger(__name__)

Statuses = dict[str, tuple[dict[str, Any], "float | None"]]


def _settings(cfg: FleetConfig, extra: list[tuple[str, int]] | None = None) -> LinkSettings:
    return LinkSettings(host=cfg.host, port=cfg.port, client_id=cfg.client_id, ca_file=cfg.ca_file,
                        cert_file=cfg.cert_file, key_file=cfg.key_file, keepalive=30, session_expiry=0,
                        clean_start=True, subscriptions=[(topics.status_filter(cfg.topic_prefix), 1), *(extra or [])],
                        connect_timeout=10.0, backoff_initial=0.5, backoff_max=10.0)


def make_link(cfg: FleetConfig, on_message: Callable[[mqtt.MQTTMessage], None],
              extra: list[tuple[str, int]] | None = None) -> Link:
    """An admin Link (the fleetops/remote tools use it too, with their own subscriptions in ``extra``)."""
    return Link(_settings(cfg, extra), client_context(cfg.ca_file, cfg.cert_file, cfg.key_file),
                on_message=on_message)


def parse(cfg: FleetConfig, msg: mqtt.MQTTMessage) -> tuple[str, dict[str, Any]] | None:
    """(device, document) of a status message; an unreadable one becomes a document that says so."""
    try:
        kind, device, _ = topics.parse_fleet_topic(cfg.topic_prefix, msg.topic)
    except ProtocolError:
        return None
    if kind != "status":
        return None
    if not msg.payload:
        return None  # a cleared retained status: the device was removed
    try:
        return device, S.parse_status(bytes(msg.payload), device)
    except ProtocolError as exc:
        return device, {"v": S.VERSION, "device": device, "online": True,
                        "problems": [{"kind": "error", "text": f"its status document is unreadable: {exc}"[:300]}]}


def snapshot(cfg: FleetConfig, *, quiet: float = 0.25, max_wait: float = 5.0) -> Statuses:
    """Every retained status now at the broker: the broker sends them right after the SUBACK, so
    this waits for the SUBACK and then for ``quiet`` seconds without a message. Raises
    wire.tls.TransportError in words."""
    out: Statuses = {}
    last = [time.monotonic()]

    def on_message(msg: mqtt.MQTTMessage) -> None:
        got = parse(cfg, msg)
        last[0] = time.monotonic()
        if got is not None:
            out[got[0]] = (got[1], None if msg.retain else time.time())

    link = make_link(cfg, on_message)
    link.connect_once()
    try:
        start = last[0] = time.monotonic()
        while time.monotonic() - start < max_wait and (not link.subacks or time.monotonic() - last[0] < quiet):
            if not link.subacks:
                last[0] = time.monotonic()  # the quiet period starts at the SUBACK
            if not link.loop(timeout=0.02):
                break
        failures = link.subscription_failures()
        if failures:
            raise ProtocolError(f"the broker refused the status subscription ({', '.join(failures)}): the ACL "
                                f"must give {cfg.client_id!r} read on {topics.status_filter(cfg.topic_prefix)}")
    finally:
        link.close()
    return out


#: After losing an established connection the watcher waits this long before it takes the session
#: back: the usual cause is another admin tool with the same certificate (`fleet command --wait 60`,
#: `fleet config push`), which an immediate reconnect cut off within milliseconds. Statuses are
#: retained, so nothing is lost meanwhile; the view says it is not connected.
TAKEOVER_YIELD_SECONDS = 60.0


class FleetWatcher(threading.Thread):
    """Follows every device's status; ``statuses()`` is a copy, ``changed`` counts updates."""

    def __init__(self, cfg: FleetConfig, *, yield_seconds: float = TAKEOVER_YIELD_SECONDS) -> None:
        super().__init__(name="fleet-watcher", daemon=True)
        self.cfg = cfg
        self.yield_seconds = yield_seconds
        self._lock = threading.Lock()
        self._statuses: Statuses = {}
        self._halt = threading.Event()
        self.changed = 0
        self.connected = False
        self.last_error: str | None = None
        self.link = make_link(cfg, self._on_message)

    def _on_message(self, msg: mqtt.MQTTMessage) -> None:
        got = parse(self.cfg, msg)
        if got is None:
            return
        device, doc = got
        with self._lock:
            prev = self._statuses.get(device, ({}, None))[0]
            self._statuses[device] = (S.merge_offline(prev, doc), None if msg.retain else time.time())
            self.changed += 1

    @property
    def why_disconnected(self) -> str | None:
        """What the view says while not connected: the watcher's own reason (it is yielding the session to
        another admin tool) before the link's last error."""
        return None if self.connected else (self.last_error or self.link.last_error)

    def statuses(self) -> Statuses:
        with self._lock:
            return dict(self._statuses)

    def run(self) -> None:
        while not self._halt.is_set():
            if not self.link.connected:
                self.connected = False
                if not self.link.ensure_connected(self._halt.wait):
                    break
            self.connected = True
            self.last_error = None
            if not self.link.loop(timeout=0.2):
                self.connected = False
                self.last_error = (f"{self.link.last_error}; reconnecting in {self.yield_seconds:.0f} s (another "
                                   f"admin tool with the identity {self.cfg.client_id!r} may be using it)")
                log.warning("%s", self.last_error)
                if self._halt.wait(self.yield_seconds):
                    break
        self.link.close()
        self.connected = False

    def stop(self, timeout: float = 5.0) -> None:
        self._halt.set()
        self.join(timeout)
