"""Certificate renewal on the wire (RFC 7030's "simple re-enroll", over the device's MQTT session).

device -> ``<prefix>/<device>/pki/csr/<id>``   {"v":1, "type":"renew", "id", "csr", "current", "proof"}
service -> ``<prefix>/<device>/pki/cert/<id>`` {"v":1, "type":"certificate", "id", "certificate"}
                                            or {"v":1, "type":"refused", "id", "reason"}

``current`` is the device's certificate now in use; ``proof`` is an ECDSA signature, by the key of
that certificate, over :func:`proof_bytes` (the id and the CSR). So a request proves possession of
the current identity even though the broker, not the service, terminated the TLS session; and the
broker ACL lets only ``<device>`` write under ``<prefix>/<device>/`` (docs/fleet-operations.md).
"""
from __future__ import annotations

import base64
import json
import re
from typing import Any

SERVICE_CN = "labedge-pki"
ID_RE = re.compile(r"^[0-9a-f]{16,32}$")
#: A CSR and a certificate are ~0.5 KiB each in PEM; anything much larger is not ours.
MAX_MESSAGE = 16 * 1024


class RenewalMessageError(ValueError):
    """A renewal message that does not follow this module's format; the text says which field."""


def csr_topic(prefix: str, device: str, req_id: str) -> str:
    return f"{prefix}/{device}/pki/csr/{req_id}"


def cert_topic(prefix: str, device: str, req_id: str) -> str:
    return f"{prefix}/{device}/pki/cert/{req_id}"


def service_filter(prefix: str) -> str:
    return f"{prefix}/+/pki/csr/+"


def device_filter(prefix: str, device: str) -> str:
    return f"{prefix}/{device}/pki/cert/+"


def parse_topic(prefix: str, topic: str, kind: str) -> tuple[str, str]:
    """(device, id) of ``<prefix>/<device>/pki/<kind>/<id>``; the device id is what the ACL bound."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != prefix or parts[2] != "pki" or parts[3] != kind or not ID_RE.match(parts[4]):
        raise RenewalMessageError(f"not a renewal {kind} topic: {topic[:200]!r}")
    return parts[1], parts[4]


def proof_bytes(req_id: str, csr_pem: str) -> bytes:
    return f"labedge-renew-v1\n{req_id}\n{csr_pem}".encode()


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps({"v": 1, **body}, separators=(",", ":")).encode()


def decode(payload: bytes, want: tuple[str, ...]) -> dict[str, Any]:
    if len(payload) > MAX_MESSAGE:
        raise RenewalMessageError(f"message of {len(payload)} bytes exceeds {MAX_MESSAGE}")
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RenewalMessageError(f"not JSON: {exc}") from None
    if not isinstance(body, dict) or body.get("v") != 1 or body.get("type") not in want:
        raise RenewalMessageError(f"expected a v1 message of type {' or '.join(want)}")
    if not isinstance(body.get("id"), str) or not ID_RE.match(body["id"]):
        raise RenewalMessageError("field 'id' missing or malformed")
    for k in {"renew": ("csr", "current", "proof"), "certificate": ("certificate",),
              "refused": ("reason",)}[body["type"]]:
        if not isinstance(body.get(k), str) or not body[k]:
            raise RenewalMessageError(f"field {k!r} missing or not a string")
    return body


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise RenewalMessageError("field 'proof' is not base64") from None
