"""Remote commands on the wire: what `labedge fleet command` sends and what the device answers.

The command is a signed envelope (:mod:`wire.signed`, kind ``command``) in a bundle, on
``<prefix>/<device>/cmd/<id>`` (:mod:`wire.topics`). Its payload::

    {"id": "<the topic's id>", "action": "pause", "args": {"reason": "..."}}

and its ``targets`` must be exactly ``{"devices": ["<device>"]}``: one envelope per device, so a
command a broker moves to another device's topic is refused there. The envelope's ``expires`` is the
command's expiry. The device answers on ``<prefix>/<device>/cmd-result/<id>``::

    {"v": 1, "type": "command-result", "id", "device", "action", "status", "message", "at", "replayed"}

``status``: ``done`` | ``accepted`` (started; a second result follows) | ``failed`` | ``refused``.
A result with ``replayed: true`` answers a copy of a command already handled: it did nothing again.
"""
from __future__ import annotations

import json
import secrets
import time
from typing import Any

from wire.protocol import ProtocolError

KIND = "command"
ACTIONS = ("retry", "pause", "resume", "rescan", "diagnostics", "renew-certificate")
FINAL = ("done", "failed", "refused")
STATUSES = ("accepted",) + FINAL
MAX_REASON = 200
MAX_RESULT_BYTES = 4096
#: A command's expiry is at most this far ahead: the device remembers ids at least this long.
MAX_VALID_SECONDS = 7 * 24 * 3600


def new_command_id() -> str:
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{secrets.token_hex(6)}"


def command_payload(cmd_id: str, action: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    if action not in ACTIONS:
        raise ProtocolError(f"unknown action {action!r}; one of: {', '.join(ACTIONS)}")
    return {"id": cmd_id, "action": action, "args": dict(args or {})}


def check_payload(payload: Any, topic_id: str) -> tuple[str, dict[str, Any]]:
    """(action, args) of a verified command's payload; ProtocolError names what is wrong."""
    if not isinstance(payload, dict) or set(payload) != {"id", "action", "args"}:
        raise ProtocolError("the command payload must have exactly id, action and args")
    if payload["id"] != topic_id:
        raise ProtocolError(f"the signed id {str(payload['id'])[:80]!r} is not the topic's id {topic_id!r}")
    action, args = payload["action"], payload["args"]
    if action not in ACTIONS:
        raise ProtocolError(f"unknown action {str(action)[:40]!r}")
    if not isinstance(args, dict):
        raise ProtocolError("args must be an object")
    reason = args.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_REASON or any(ord(c) < 32 for c in reason):
        raise ProtocolError(f"reason must be one line of at most {MAX_REASON} characters")
    if set(args) - {"reason"}:
        raise ProtocolError(f"unknown argument(s): {', '.join(sorted(set(args) - {'reason'}))[:100]}")
    return action, args


def result_message(cmd_id: str, device: str, action: str | None, status: str, message: str, *,
                   replayed: bool = False, detail: dict[str, Any] | None = None) -> bytes:
    assert status in STATUSES
    body = {"v": 1, "type": "command-result", "id": cmd_id, "device": device, "action": action,
            "status": status, "message": message[:1000], "at": time.time(), "replayed": replayed,
            "detail": detail or {}}
    data = json.dumps(body, ensure_ascii=False).encode()
    if len(data) > MAX_RESULT_BYTES:  # never truncate silently: drop the detail, keep the words
        body["detail"] = {"note": "detail left out: too large"}
        data = json.dumps(body, ensure_ascii=False).encode()
    return data


def parse_result(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_RESULT_BYTES:
        raise ProtocolError(f"a command result of {len(data)} bytes exceeds {MAX_RESULT_BYTES}")
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"a command result is not JSON ({exc})") from None
    if not isinstance(body, dict) or body.get("type") != "command-result" or body.get("status") not in STATUSES:
        raise ProtocolError("not a command result")
    return body
