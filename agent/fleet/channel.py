"""The extension point on the device's ONE MQTT connection (the uploader's).

The broker binds the client id to the certificate CN, so a device cannot open a second connection
for status, commands or configuration: everything rides on the uploader's link. The runner makes
one :class:`FleetChannel`, hands it to the uploader, and gives it to every fleet feature::

    channel.subscribe(topics.device_command_filter(prefix, device), on_command)   # any thread
    channel.publish(topics.command_result_topic(prefix, device, cid), body)       # any thread
    channel.set_will(lambda: (topic, payload, 1, True))                          # before start
    channel.on_connected(lambda: ...)          # after every (re)connect, on the uploader thread
    channel.on_closing(lambda: [(topic, payload, qos, retain), ...])   # last words on a clean stop

Rules (why): handlers and callbacks run ON THE UPLOADER THREAD inside the MQTT loop, so they must
only parse, check and enqueue (never block, never do file I/O that can hang); a slow handler stalls
uploads. Subscriptions are re-made on every reconnect. ``publish`` is thread-safe and queues while
the link is down: a retained message keeps only its newest payload per topic (a status that is
replaced anyway), other messages queue up to :data:`MAX_QUEUED` and the oldest are dropped beyond.
"""
from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)

MAX_QUEUED = 200
Handler = Callable[[str, bytes], None]
WillFn = Callable[[], "tuple[str, bytes, int, bool]"]
Outgoing = "tuple[str, bytes, int, bool]"


class LinkLike(Protocol):
    connected: bool

    def publish(self, topic: str, payload: bytes | bytearray, qos: int = 1, retain: bool = False) -> int | None: ...

    def add_subscription(self, topic: str, qos: int) -> None: ...


@dataclass(frozen=True)
class _Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool


class FleetChannel:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: list[tuple[str, int, Handler]] = []
        self._new_subs: list[tuple[str, int]] = []
        self._retained: dict[str, _Message] = {}
        self._queue: collections.deque[_Message] = collections.deque()
        self._dropped = 0
        self._will: WillFn | None = None
        self._connected_cbs: list[Callable[[], None]] = []
        self._closing_cbs: list[Callable[[], list[Any]]] = []
        self.wakeup: Callable[[], None] = lambda: None   # the uploader sets this to wake its loop

    # ------------------------------------------------------------------ for fleet features (any thread)
    def subscribe(self, topic_filter: str, handler: Handler, qos: int = 1) -> None:
        """Deliver messages matching ``topic_filter`` to ``handler(topic, payload)`` on the uploader thread."""
        with self._lock:
            self._subs.append((topic_filter, qos, handler))
            self._new_subs.append((topic_filter, qos))
        self.wakeup()

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
        data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        msg = _Message(topic, data, qos, retain)
        with self._lock:
            if retain:
                self._retained.pop(topic, None)
                self._retained[topic] = msg
            else:
                self._queue.append(msg)
                while len(self._queue) > MAX_QUEUED:
                    self._queue.popleft()
                    self._dropped += 1
        self.wakeup()

    def set_will(self, fn: WillFn) -> None:
        """``fn()`` -> (topic, payload, qos, retain), called before EVERY connect (so it can carry the time)."""
        self._will = fn

    def on_connected(self, cb: Callable[[], None]) -> None:
        self._connected_cbs.append(cb)

    def on_closing(self, cb: Callable[[], list[Any]]) -> None:
        """``cb()`` -> messages [(topic, payload, qos, retain)] sent just before a clean disconnect."""
        self._closing_cbs.append(cb)

    # ------------------------------------------------------------------ for the uploader (its thread only)
    def subscriptions(self) -> list[tuple[str, int]]:
        with self._lock:
            self._new_subs.clear()  # the link subscribes to all of these at connect
            return [(f, q) for f, q, _ in self._subs]

    def will(self) -> tuple[str, bytes, int, bool] | None:
        return self._will() if self._will is not None else None

    def connected(self) -> None:
        for cb in self._connected_cbs:
            try:
                cb()
            except Exception:  # noqa: BLE001 - a feature's bug must not take uploads down
                log.exception("fleet on_connected callback failed")

    def dispatch(self, topic: str, payload: bytes) -> bool:
        """Hand a message to every matching handler; False if none wanted it."""
        with self._lock:
            matching = [h for f, _, h in self._subs if mqtt.topic_matches_sub(f, topic)]
        for h in matching:
            try:
                h(topic, payload)
            except Exception:  # noqa: BLE001
                log.exception("fleet handler for %s failed", topic)
        return bool(matching)

    def service(self, link: LinkLike) -> None:
        """Make new subscriptions and send what is queued, while the link is up."""
        if not link.connected:
            return
        with self._lock:
            new, self._new_subs = self._new_subs, []
        for f, q in new:
            link.add_subscription(f, q)
        while True:
            with self._lock:
                if self._retained:
                    topic = next(iter(self._retained))
                    msg = self._retained.pop(topic)
                elif self._queue:
                    msg = self._queue.popleft()
                else:
                    break
            if link.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain) is None:
                with self._lock:  # paho is full or the link dropped: put it back, try after the next loop
                    if msg.retain:
                        self._retained.setdefault(msg.topic, msg)
                    else:
                        self._queue.appendleft(msg)
                return
        if self._dropped:
            log.warning("fleet channel: %d message(s) dropped while the broker was unreachable", self._dropped)
            self._dropped = 0

    def farewell(self) -> list[tuple[str, bytes, int, bool]]:
        out: list[tuple[str, bytes, int, bool]] = []
        for cb in self._closing_cbs:
            try:
                out.extend(cb())
            except Exception:  # noqa: BLE001
                log.exception("fleet on_closing callback failed")
        return out

    def pending(self) -> int:
        with self._lock:
            return len(self._retained) + len(self._queue)
