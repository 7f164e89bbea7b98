"""The device status document (v1) on ``<prefix>/<device>/status``: retained, QoS 1, at most
:data:`MAX_STATUS_BYTES`. See docs/facility.md.

Both sides use this module: the device builds the document with :func:`fit` (which shortens the
problem list to fit the bound and SAYS how many it left out, never cuts silently), the facility
parses with :func:`parse_status`, which refuses anything over the bound, of another version, or
whose ``device`` differs from the topic's (the topic is bound to the certificate CN).

An online document has ``online: true`` and ``sent_at`` (the device's clock, epoch seconds). The
MQTT will (sent by the broker when the connection dies) and the clean-stop message have
``online: false``, ``reason`` and ``connected_at``; the broker cannot stamp the will with a time,
so the facility takes "offline since" from when it received the will and "last seen" from the
last heartbeat it recorded (facility/catalog/).
"""
from __future__ import annotations

import json
from typing import Any

import jsonschema

from wire.protocol import ProtocolError

VERSION = 1
#: The hard bound on one status document (a broker's retained-message limit must allow it).
MAX_STATUS_BYTES = 4096
MAX_PROBLEMS = 20
MAX_TEXT = 300

_str = {"type": ["string", "null"], "maxLength": 400}
_int = {"type": ["integer", "null"], "minimum": 0}
_num = {"type": ["number", "null"]}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://labedge.example/status/v1",
    "type": "object",
    "required": ["v", "device", "online"],
    "additionalProperties": False,
    "properties": {
        "v": {"const": VERSION},
        "device": {"type": "string", "maxLength": 64},
        "online": {"type": "boolean"},
        "reason": _str,                       # offline documents: "connection lost" / "stopped"
        "sent_at": _num,
        "connected_at": _num,
        "seq": _int,
        "interval": {"type": "integer", "minimum": 1, "maximum": 86400},
        "agent_version": _str,
        "translators": {"type": "object", "maxProperties": 40,
                        "additionalProperties": {"type": "string", "maxLength": 40}},
        "config": {"type": "object", "additionalProperties": False,
                   # remote config (agent/remote, docs/remote-config.md): versions, state, reason, groups
                   "properties": {"version": _str, "state": _str, "error": _str,
                                  "desired_version": _int, "applied_version": _int, "event_version": _int,
                                  "groups": {"type": "array", "maxItems": 16,
                                             "items": {"type": "string", "maxLength": 64}}}},
        "queue": {"type": "object", "additionalProperties": False,
                  "properties": {k: _int for k in ("queued", "uploading", "delivered", "failed")}},
        "oldest_waiting_s": _num,
        "spool": {"type": "object", "additionalProperties": False,
                  "properties": {"used": _int, "max": _int, "disk_free": _int}},
        "paused": _str,                       # why intake is paused, in words (None: not paused)
        "held": _int,                         # measurements held for a sheet
        "problems": {"type": "array", "maxItems": MAX_PROBLEMS,
                     "items": {"type": "object", "additionalProperties": False, "required": ["kind", "text"],
                               "properties": {"kind": {"enum": ["error", "warning", "info"]},
                                              "text": {"type": "string", "maxLength": MAX_TEXT}}}},
        "problems_omitted": _int,            # problems not listed to keep within the bound
        "cert_not_after": _num,
        "last_delivery": _num,
        "os": _str,
        "host": _str,
        "pc_state": {"type": ["string", "null"], "maxLength": 40},   # what the PC's tray says (agent/summary.py)
        "pc_reason": _str,
    },
}
_validator = jsonschema.Draft202012Validator(SCHEMA)


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode("utf-8")


def fit(doc: dict[str, Any]) -> bytes:
    """Encode ``doc`` within MAX_STATUS_BYTES, dropping problems from the end (counted in
    ``problems_omitted``) and then shortening texts; raises ProtocolError if it cannot fit."""
    doc = dict(doc)
    problems = [{"kind": p["kind"], "text": p["text"][:MAX_TEXT]} for p in doc.get("problems", [])]
    omitted = int(doc.get("problems_omitted") or 0) + max(0, len(problems) - MAX_PROBLEMS)
    problems = problems[:MAX_PROBLEMS]
    for k in ("translators",):
        if k in doc and len(doc[k]) > 40:
            doc[k] = dict(sorted(doc[k].items())[:40])
    while True:
        doc["problems"] = problems
        doc["problems_omitted"] = omitted
        data = encode(doc)
        if len(data) <= MAX_STATUS_BYTES:
            return data
        if problems:
            problems = problems[:-1]
            omitted += 1
        elif doc.get("translators"):
            doc["translators"] = {}
        else:
            raise ProtocolError(f"status document of {len(data)} bytes cannot fit {MAX_STATUS_BYTES}")


def parse_status(payload: bytes, device: str) -> dict[str, Any]:
    if len(payload) > MAX_STATUS_BYTES:
        raise ProtocolError(f"status of {len(payload)} bytes exceeds the {MAX_STATUS_BYTES}-byte bound")
    try:
        doc = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"status is not JSON: {exc}") from None
    err = next(iter(_validator.iter_errors(doc)), None)
    if err is not None:
        where = "/".join(map(str, err.absolute_path)) or "document"
        raise ProtocolError(f"status {where}: {err.message[:200]}")
    if doc["device"] != device:
        raise ProtocolError(f"status names device {doc['device']!r} but came on {device!r}'s topic")
    return doc


def offline_document(device: str, reason: str, connected_at: float | None, sent_at: float | None = None,
                     interval: int | None = None) -> bytes:
    doc: dict[str, Any] = {"v": VERSION, "device": device, "online": False, "reason": reason,
                           "connected_at": connected_at, "sent_at": sent_at}
    if interval:
        doc["interval"] = interval
    return encode(doc)


def merge_offline(previous: dict[str, Any] | None, offline: dict[str, Any]) -> dict[str, Any]:
    """An offline document keeps the last online facts (version, queue, certificate...) so the view
    can still say what the device had when it went away; the offline fields win."""
    if not previous or offline.get("online"):
        return offline
    last = previous.get("sent_at") if previous.get("online") else previous.get("last_online_sent_at")
    return {**previous, **offline, "last_online_sent_at": last}
