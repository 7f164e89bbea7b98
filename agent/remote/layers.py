"""The two config layers and who wins: the PC's own ``labedge.toml``, and the facility's ``remote.toml``.

Precedence (README, docs/remote-config.md): the remote layer is merged over the local file key by key;
a key the facility set wins over the same key in ``labedge.toml``, except the LOCAL-ONLY keys below,
which the facility can never set (a fragment naming one is refused as a whole). ``[[instruments]]``
tables merge by ``id``: a remote instrument with a known id changes only the keys it names, a new id
adds an instrument. Every other list is replaced whole.

Nothing here imports the rest of the agent: ``agent.config.load_config`` calls ``effective_data``.
"""
from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)

#: Keys that only the PC's own file may set: identity, secrets' locations, where state lives, and the
#: remote section (trust root, groups) itself, so a pushed config can never widen its own trust.
LOCAL_ONLY = ("device_id", "state_dir", "spool_dir", "log_dir", "remote",
              "upload.ca_file", "upload.cert_file", "upload.key_file")
REMOTE_TOML = "remote.toml"
REMOTE_ENVELOPE = "remote.envelope.json"


class LayerError(Exception):
    """A remote fragment that cannot be layered; the text says which key and why."""


@dataclass(frozen=True)
class RemoteFiles:
    toml: Path
    envelope: Path

    @classmethod
    def beside(cls, config_path: Path) -> "RemoteFiles":
        d = Path(config_path).parent
        return cls(d / REMOTE_TOML, d / REMOTE_ENVELOPE)


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


def read_remote(files: RemoteFiles) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(fragment, envelope record) of the applied remote layer, or None when there is none."""
    if not files.toml.exists():
        return None
    fragment = parse_fragment(files.toml.read_text(encoding="utf-8"))
    record: dict[str, Any] = {}
    try:
        top = json.loads(files.envelope.read_text(encoding="utf-8"))
        doc = top.get("document", {})
        record = {"version": doc.get("version"), "key_id": doc.get("key_id"), "signer": top.get("signer"),
                  "applied_at": top.get("applied_at")}
    except (OSError, ValueError, AttributeError):
        pass
    return fragment, record


def effective_data(local: dict[str, Any], config_path: Path) -> dict[str, Any]:
    """What ``load_config`` validates: the local file with the facility's layer over it.

    A remote layer that can no longer be read or names a local-only key is ignored (with a log line),
    never fatal: the PC's own file alone always starts the agent.
    """
    if (local.get("remote") or {}).get("enabled") is False:
        return local
    try:
        got = read_remote(RemoteFiles.beside(config_path))
        if got is None:
            return local
        fragment, _ = got
        bad = local_only_keys(fragment)
        if bad:
            raise LayerError(f"names local-only keys: {', '.join(bad)}")
    except (OSError, UnicodeDecodeError, LayerError) as exc:
        log.warning("ignoring the facility's layer %s beside %s: %s", REMOTE_TOML, config_path, exc)
        return local
    return merge(local, fragment)
