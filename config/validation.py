"""Schema violations in words: one line naming the key (and the instrument id) and what is allowed.

Shared by every TOML config that has a schema in ``config/schema``: the agent's and the facility's.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema


class ConfigError(Exception):
    """The configuration file is missing, unreadable or invalid; the message says where."""


def describe_error(err: jsonschema.ValidationError, data: dict[str, Any]) -> str:
    """One line naming the key, the instrument id when inside [[instruments]], and what is allowed."""
    path = list(err.absolute_path)
    where = _key_path(path, data)
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        allowed = ", ".join(sorted(err.schema.get("properties", {})))
        key = f"{where}.{extra[0]}" if where else extra[0]
        return f"unknown key {key!r}; allowed here: {allowed}"
    if err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return f"missing required key {(where + '.' if where else '') + missing!r}"
    if err.validator == "type":
        return f"{where}: expected {err.validator_value}, got {type(err.instance).__name__} {err.instance!r}"
    if err.validator == "enum":
        return f"{where}: {err.instance!r} is not one of {', '.join(map(repr, err.validator_value))}"
    if err.validator == "pattern":
        hint = err.schema.get("description", f"must match {err.validator_value}")
        return f"{where}: {err.instance!r} is not allowed ({hint})"
    if err.validator in ("minimum", "maximum"):
        return f"{where}: {err.instance!r} is out of range ({err.validator} {err.validator_value})"
    if err.validator == "minItems":
        return f"{where}: needs at least {err.validator_value} item(s)"
    return f"{where or 'top level'}: {err.message}"


def _key_path(path: list[Any], data: Any) -> str:
    out = ""
    node = data
    for part in path:
        if isinstance(part, int):
            label = f"[{part}]"
            if isinstance(node, list) and part < len(node) and isinstance(node[part], dict) and "id" in node[part]:
                label = f"[{part}] (id={node[part]['id']!r})"
            out += label
        else:
            out += ("." if out else "") + str(part)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return out


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML config file's table, or ConfigError naming the file (``what``: e.g. "fleet config")."""
    import sys
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} file not found") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid UTF-8 TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def validate_against(schema: dict[str, Any], data: dict[str, Any], source: Any) -> None:
    """The first schema violation (outermost first) as one ConfigError line naming the key."""
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: len(e.absolute_path))
    if errors:
        raise ConfigError(f"{source}: " + describe_error(errors[0], data))


def broker_address(url: str) -> tuple[str, int]:
    """``mqtts://host[:port][/]`` (the schemas' pattern) as (host, port); MQTT over TLS defaults to 8883."""
    rest = url.split("://", 1)[1].rstrip("/")
    host, _, port = rest.partition(":")
    return host, int(port) if port else 8883


def resolve_path(value: str, base: Path) -> Path:
    """A path from a config file: ``~`` and ``$VARS`` expanded, relative ones taken from the file's folder."""
    import os
    q = Path(os.path.expandvars(os.path.expanduser(value)))
    return q if q.is_absolute() else base / q


class BrokerAddress:
    """``host`` and ``port`` of a config dataclass's ``broker`` URL (agent, receiver, fleet, renewal)."""

    broker: str

    @property
    def host(self) -> str:
        return broker_address(self.broker)[0]

    @property
    def port(self) -> int:
        return broker_address(self.broker)[1]
