"""Fleet topics (status, commands, command results, configuration) that both sides build the same way.

Upload topics (``up/``, ``down/``) live in :mod:`wire.protocol`. Every device topic has the device
id as its second level, which the broker ACL binds to the certificate CN (``%u``), so who sent a
message is read from its topic, never from its payload::

  <prefix>/<device>/status            device -> all      retained status document (wire/status.py)
  <prefix>/<device>/cmd/<id>          admin  -> device   one signed command
  <prefix>/<device>/cmd-result/<id>   device -> admin    its result
  <prefix>/<device>/config            admin  -> device   retained signed configuration for one device
  <prefix>/group/<name>/config        admin  -> devices  retained signed configuration for a group

``group`` is therefore a reserved device id (see :data:`RESERVED_DEVICE_IDS`).
"""
from __future__ import annotations

import re

from wire.protocol import DEVICE_RE, ProtocolError

#: Second-level names that are not devices; the CA refuses to sign these as CNs.
RESERVED_DEVICE_IDS = frozenset({"group", "labedge-admin", "labedge-receiver"})
COMMAND_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
GROUP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _check_device(device: str) -> str:
    if not DEVICE_RE.match(device) or device in RESERVED_DEVICE_IDS:
        raise ProtocolError(f"bad device id {device!r}")
    return device


def _check_id(cmd_id: str) -> str:
    if not COMMAND_ID_RE.match(cmd_id):
        raise ProtocolError(f"bad command id {cmd_id!r}")
    return cmd_id


# ------------------------------------------------------------------------------ status
def status_topic(prefix: str, device: str) -> str:
    return f"{prefix}/{_check_device(device)}/status"


def status_filter(prefix: str) -> str:
    """Every device's status (the administrator and the receivers subscribe to this)."""
    return f"{prefix}/+/status"


# ------------------------------------------------------------------------------ commands
def command_topic(prefix: str, device: str, cmd_id: str) -> str:
    return f"{prefix}/{_check_device(device)}/cmd/{_check_id(cmd_id)}"


def device_command_filter(prefix: str, device: str) -> str:
    """What a device subscribes to for its commands."""
    return f"{prefix}/{_check_device(device)}/cmd/+"


def command_result_topic(prefix: str, device: str, cmd_id: str) -> str:
    return f"{prefix}/{_check_device(device)}/cmd-result/{_check_id(cmd_id)}"


def command_result_filter(prefix: str, device: str = "+") -> str:
    return f"{prefix}/{device if device == '+' else _check_device(device)}/cmd-result/+"


# ------------------------------------------------------------------------------ configuration
def device_config_topic(prefix: str, device: str) -> str:
    return f"{prefix}/{_check_device(device)}/config"


def group_config_topic(prefix: str, group: str) -> str:
    if not GROUP_RE.match(group):
        raise ProtocolError(f"bad group name {group!r}")
    return f"{prefix}/group/{group}/config"


# ------------------------------------------------------------------------------ parsing
def parse_fleet_topic(prefix: str, topic: str) -> tuple[str, str, str | None]:
    """-> (kind, device-or-group, id) with kind one of status, cmd, cmd-result, config, group-config.

    Raises ProtocolError for anything else, so a handler never acts on a topic it did not expect."""
    parts = topic.split("/")
    if len(parts) < 3 or parts[0] != prefix:
        raise ProtocolError(f"unexpected topic {topic!r}")
    if parts[1] == "group":
        if len(parts) == 4 and parts[3] == "config" and GROUP_RE.match(parts[2]):
            return "group-config", parts[2], None
        raise ProtocolError(f"unexpected topic {topic!r}")
    device = parts[1]
    if not DEVICE_RE.match(device) or device in RESERVED_DEVICE_IDS:
        raise ProtocolError(f"topic {topic!r}: bad device id")
    if len(parts) == 3 and parts[2] in ("status", "config"):
        return parts[2], device, None
    if len(parts) == 4 and parts[2] in ("cmd", "cmd-result") and COMMAND_ID_RE.match(parts[3]):
        return parts[2], device, parts[3]
    raise ProtocolError(f"unexpected topic {topic!r}")
