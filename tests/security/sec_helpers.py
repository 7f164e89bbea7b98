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


def offer_payload(pid: str, chunk_size: int, files: list[tuple[str, int, str]]) -> bytes:
    """A syntactically valid offer (right tag) for whatever files a hostile device declares."""
    import json

    from wire.protocol import FileEntry, offer_tag
    tag = offer_tag(pid, chunk_size, [FileEntry(*f) for f in files])
    total = sum(f[1] for f in files)
    return json.dumps({"v": 1, "type": "offer", "package_id": pid, "q": 1, "chunk_size": chunk_size,
                       "total_bytes": total, "chunks": -(-total // chunk_size), "tag": tag.hex(),
                       "files": [list(f) for f in files]}).encode()


class Device(RawClient):
    """A scripted device: publishes offers/chunks under its own id and records the receiver's replies."""

    def __init__(self, port: int, pki, name: str) -> None:  # noqa: ANN001
        super().__init__(port, pki.ca, *pki.certs[name], client_id=name)
        self.name = name
        self.replies: dict[str, list[tuple[float, dict]]] = {}
        self.client.on_message = self._reply
        self.subscribe(f"rde/{name}/down/#")

    def _reply(self, _c, _u, msg) -> None:
        import json
        import time
        with self._lock:
            self.replies.setdefault(msg.topic.split("/")[-1], []).append((time.monotonic(), json.loads(msg.payload)))

    def offer(self, pid: str, payload: bytes) -> float:
        import time
        t0 = time.monotonic()
        self.client.publish(f"rde/{self.name}/up/{pid}/offer", payload, qos=1).wait_for_publish(10)
        return t0

    def chunk(self, pid: str, payload: bytes) -> None:
        self.client.publish(f"rde/{self.name}/up/{pid}/chunk", payload, qos=1).wait_for_publish(10)

    def last(self, pid: str) -> dict | None:
        with self._lock:
            got = self.replies.get(pid)
            return got[-1][1] if got else None
