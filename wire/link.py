"""One MQTT v5 connection driven from ONE thread (the owner's), for the uploader and the receiver.

Why not paho's own loop thread and auto-reconnect: paho retries without jitter, forgets
``clean_start=False`` semantics on a fresh process unless told each time, and hides TLS alerts.
Driving ``client.loop()`` ourselves keeps every callback on the owner's thread (no locks) and
lets us decide when to reconnect (tenacity's exponential backoff with jitter).
"""
from __future__ import annotations

import logging
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import paho.mqtt.client as mqtt
import tenacity
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from wire.tls import TransportError, describe_failure, probe

log = logging.getLogger(__name__)

CONNACK_WORDS = {
    0x85: "the broker refused the client id {cid!r} (it must equal the certificate's CN)",
    0x86: "the broker refused this device's identity (certificate CN not accepted)",
    0x87: "the broker does not authorise this device ({cid!r}): check its certificate and the broker ACL",
    0x8A: "the broker has banned this client",
    0x88: "the broker is unavailable",
    0x89: "the broker is busy",
}


@dataclass
class LinkSettings:
    host: str
    port: int
    client_id: str
    ca_file: Path
    cert_file: Path
    key_file: Path
    keepalive: int = 30
    session_expiry: int = 0
    clean_start: bool = False
    max_inflight: int = 20
    subscriptions: list[tuple[str, int]] = field(default_factory=list)
    connect_timeout: float = 15.0
    backoff_initial: float = 0.5
    backoff_max: float = 60.0


class Link:
    """Owner calls ``ensure_connected()`` then ``loop()`` repeatedly; callbacks run inside them."""

    def __init__(self, s: LinkSettings, ctx: ssl.SSLContext, *,
                 on_message: Callable[[mqtt.MQTTMessage], None],
                 on_puback: Callable[[int, int], None] | None = None,
                 on_connected: Callable[[bool], None] | None = None,
                 will: Callable[[], tuple[str, bytes, int, bool] | None] | None = None) -> None:
        """``will()`` -> (topic, payload, qos, retain) or None, asked before EVERY connect so the
        message can carry fresh facts (the device's status channel marks itself offline with it)."""
        self.s, self.ctx = s, ctx
        self.will = will
        self.on_message, self.on_puback, self.on_connected = on_message, on_puback, on_connected
        self.connected = False
        self.last_error: str | None = None
        self.max_packet_size = 268_435_455
        self.attempt = 0
        self._connack: tuple[int, bool] | None = None
        self._sub_failures: list[str] = []
        #: SUBACKs received (a reader of retained messages knows they follow right after its SUBACK)
        self.subacks = 0
        self._wait = tenacity.wait_exponential_jitter(multiplier=s.backoff_initial, max=s.backoff_max,
                                                      jitter=s.backoff_initial)
        self.client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.s.client_id,
                        protocol=mqtt.MQTTv5, reconnect_on_failure=False)
        c.tls_set_context(self.ctx)
        # paho buffers without limit past this; the callers also bound what they publish by credit.
        c.max_inflight_messages_set(self.s.max_inflight)
        c.max_queued_messages_set(self.s.max_inflight * 4)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = lambda _c, _u, msg: self.on_message(msg)
        c.on_publish = self._on_publish
        c.on_subscribe = self._on_subscribe
        return c

    # ---------------------------------------------------------------- callbacks
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        self._connack = (reason_code.value, bool(getattr(flags, "session_present", False)))
        if reason_code.value == 0 and properties is not None:
            mps = getattr(properties, "MaximumPacketSize", None)
            if mps:
                self.max_packet_size = int(mps)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        if self.connected:
            self.connected = False
            if reason_code.value not in (0,):
                self.last_error = f"connection to the broker lost ({reason_code})"

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:  # noqa: ANN001
        if self.on_puback is not None:
            self.on_puback(mid, reason_code.value)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:  # noqa: ANN001
        self.subacks += 1
        for rc in reason_codes:
            if rc.value >= 0x80:
                self._sub_failures.append(str(rc))

    # ---------------------------------------------------------------- connecting
    def backoff_delay(self) -> float:
        state = tenacity.RetryCallState(retry_object=tenacity.Retrying(), fn=None, args=(), kwargs={})
        state.attempt_number = max(1, self.attempt)
        return float(self._wait(state))

    def connect_once(self) -> None:
        """One attempt: TCP, TLS, CONNECT/CONNACK, subscriptions. Raises TransportError in plain words."""
        s = self.s
        self._connack = None
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = s.session_expiry
        will = self.will() if self.will is not None else None
        if will is not None:
            self.client.will_set(will[0], will[1], qos=will[2], retain=will[3])
        try:
            # clean_start=False on EVERY connect: paho's default wipes the session on process start.
            self.client.connect(s.host, s.port, keepalive=s.keepalive, clean_start=s.clean_start,
                                properties=props)
        except Exception as exc:  # noqa: BLE001 - TCP/TLS failures become words
            raise TransportError(describe_failure(exc, s.host, s.port, s.cert_file, s.ca_file)) from None
        deadline = time.monotonic() + s.connect_timeout
        while self._connack is None:
            rc = self.client.loop(timeout=0.2)
            if rc != mqtt.MQTT_ERR_SUCCESS or time.monotonic() > deadline:
                self._drop()
                why = probe(s.host, s.port, self.ctx, s.cert_file, s.ca_file)
                raise TransportError(why or f"the broker at {s.host}:{s.port} closed the connection before "
                                     "accepting it (check the broker log)")
        code, session_present = self._connack
        if code != 0:
            self._drop()
            words = CONNACK_WORDS.get(code, "the broker refused the connection (reason {code:#x})")
            raise TransportError(words.format(cid=s.client_id, code=code))
        self.connected = True
        self._sub_failures.clear()
        for topic, qos in s.subscriptions:  # always re-subscribe: a broker that lost its state forgets them
            self.client.subscribe(topic, qos=qos)
        log.info("connected to %s:%d as %s (session present: %s)", s.host, s.port, s.client_id, session_present)
        self.attempt = 0
        self.last_error = None
        if self.on_connected is not None:
            self.on_connected(session_present)

    def _drop(self) -> None:
        try:
            self.client.disconnect()
        except Exception:  # noqa: BLE001
            pass
        try:
            self.client.loop(timeout=0)
        except Exception:  # noqa: BLE001
            pass
        if self.client._sock is not None:  # paho leaves the socket open after a failed CONNACK
            try:
                self.client._sock.close()
            except OSError:
                pass
            self.client._sock = None
        self.connected = False

    def ensure_connected(self, sleep: Callable[[float], bool]) -> bool:
        """Connect, backing off between failures; ``sleep`` returns True to abandon (stop requested)."""
        while not self.connected:
            self.attempt += 1
            try:
                self.connect_once()
            except TransportError as exc:
                self.last_error = str(exc)
                delay = self.backoff_delay()
                log.warning("%s; retrying in %.1f s", exc, delay)
                if sleep(delay):
                    return False
        return True

    def add_subscription(self, topic: str, qos: int = 1) -> None:
        """Subscribe now (if connected) and again after every reconnect."""
        if (topic, qos) not in self.s.subscriptions:
            self.s.subscriptions.append((topic, qos))
        if self.connected:
            self.client.subscribe(topic, qos=qos)

    def subscription_failures(self) -> list[str]:
        return list(self._sub_failures)

    def loop(self, timeout: float) -> bool:
        """Process network I/O (and so callbacks). False when the connection was lost."""
        if not self.connected:
            return False
        rc = self.client.loop(timeout=timeout)
        if rc != mqtt.MQTT_ERR_SUCCESS or not self.connected:
            if self.connected or self.last_error is None:
                self.last_error = f"connection to the broker lost ({mqtt.error_string(rc)})"
            self.connected = False
            self._drop()
            log.warning("%s", self.last_error)
            return False
        return True

    def publish(self, topic: str, payload: bytes | bytearray, qos: int = 1, retain: bool = False) -> int | None:
        """Publish; returns the mid, or None if paho could not take it now (not connected / full)."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return None
        return info.mid

    def close(self) -> None:
        if self.connected:
            try:
                self.client.disconnect()
                self.client.loop(timeout=0.2)
            except Exception:  # noqa: BLE001
                pass
        self._drop()

    def pending_out(self) -> int:
        return len(getattr(self.client, "_out_messages", {}))


def properties_of(msg: mqtt.MQTTMessage) -> Any:
    return getattr(msg, "properties", None)
