"""Small helpers shared by the security tests: a raw paho client with a fixture certificate."""
from __future__ import annotations

import ssl
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class RawClient:
    """A paho MQTT v5 client holding one of the fixture's certificates: what an attacker scripts."""

    def __init__(self, port: int, ca: Path, cert: Path, key: Path, client_id: str) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        ctx = ssl.create_default_context(cafile=str(ca))
        ctx.load_cert_chain(str(cert), str(key))
        self.client.tls_set_context(ctx)
        self.messages: list[mqtt.MQTTMessage] = []
        self.subacks: dict[int, list[int]] = {}
        self._lock = threading.Lock()
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.connect("localhost", port)
        self.client.loop_start()

    def _on_message(self, _c, _u, msg) -> None:
        with self._lock:
            self.messages.append(msg)

    def _on_subscribe(self, _c, _u, mid, reason_codes, _props) -> None:
        with self._lock:
            self.subacks[mid] = [int(rc.value) for rc in reason_codes]

    def subscribe(self, topic: str) -> int:
        _, mid = self.client.subscribe(topic, qos=1)
        return mid

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
