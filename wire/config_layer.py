"""Which config keys the facility may set, and how a pushed fragment layers over a device's own file.

Both sides use these rules: the device when it checks and merges (agent/remote/), the administrator's
tools before they sign (facility/remote/), so a push that a device would refuse is refused at once.
Precedence: the fragment wins key by key, except the local-only keys, which it may never name;
``[[instruments]]`` merge by ``id``; any other list is replaced whole.
"""
from __future__ import annotations

import sys
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Keys that only the PC's own file may set: identity, secrets' locations, where state lives, and the
#: remote section (trust root, groups) itself, so a pushed config can never widen its own trust.
LOCAL_ONLY = ("device_id", "mode", "state_dir", "spool_dir", "log_dir", "remote",
              "upload.ca_file", "upload.cert_file", "upload.key_file")


class LayerError(Exception):
    """A remote fragment that cannot be layered; the text says which key and why."""


def parse_fragment(text: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LayerError(f"the pushed config is not valid TOML: {exc}") from None
    return data


def local_only_keys(fragment: dict[str, Any]) -> list[str]:
    """The local-only keys a fragment names (dotted), so the refusal can say which."""
    found = []
    for key in LOCAL_ONLY:
        head, _, tail = key.partition(".")
        if head in fragment and (not tail or isinstance(fragment[head], dict) and tail in fragment[head]):
            found.append(key)
    for i, inst in enumerate(fragment.get("instruments", []) if isinstance(fragment.get("instruments"), list) else []):
        if not isinstance(inst, dict) or not isinstance(inst.get("id"), str):
            raise LayerError(f"instruments[{i}] in the pushed config has no id (instruments merge by id)")
    return found


def merge(local: dict[str, Any], fragment: dict[str, Any]) -> dict[str, Any]:
    """The fragment over the local data, key by key (a new dict; neither input changes)."""
    out = dict(local)
    for key, value in fragment.items():
        if key == "instruments" and isinstance(value, list) and isinstance(local.get(key), list):
            out[key] = _merge_instruments(local[key], value)
        elif isinstance(value, dict) and isinstance(local.get(key), dict):
            out[key] = merge(local[key], value)
        else:
            out[key] = value
    return out


def _merge_instruments(local: list[Any], remote: list[dict[str, Any]]) -> list[Any]:
    by_id = {r["id"]: r for r in remote}
    out = [merge(inst, by_id.pop(inst["id"])) if isinstance(inst, dict) and inst.get("id") in by_id else inst
           for inst in local]
    out += [r for r in remote if r["id"] in by_id]  # instruments the facility adds, in its order
    return out


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys -> values; instruments as ``instruments[ID].key``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if key == "instruments" and isinstance(value, list) and not prefix:
            for inst in value:
                if isinstance(inst, dict):
                    out.update(flatten({k: v for k, v in inst.items() if k != "id"},
                                       f"instruments[{inst.get('id')}]."))
        elif isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def facility_keys(local: dict[str, Any], fragment: dict[str, Any]) -> list[dict[str, Any]]:
    """Each key the facility sets and what it changes: [{key, value, local (or None)}]."""
    mine, theirs = flatten(local), flatten(fragment)
    return [{"key": k, "value": v, "local": mine.get(k), "differs": mine.get(k) != v}
            for k, v in sorted(theirs.items())]
