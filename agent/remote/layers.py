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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.validation import ConfigError
from wire.config_layer import (LOCAL_ONLY, LayerError, facility_keys, flatten, local_only_keys,  # noqa: F401
                               merge, parse_fragment)

log = logging.getLogger(__name__)

REMOTE_TOML = "remote.toml"
REMOTE_ENVELOPE = "remote.envelope.json"


@dataclass(frozen=True)
class RemoteFiles:
    toml: Path
    envelope: Path

    @classmethod
    def beside(cls, config_path: Path, *, system: bool = False) -> "RemoteFiles":
        """Beside the config file; in machine-wide mode in the service's own folder instead, because
        the service may not write its config folder (systemd's ProtectSystem=strict keeps /etc read-only,
        and the Windows config folder is the administrators')."""
        if system:
            from agent.machine import system_paths

            d = system_paths().base_dir / "remote"
        else:
            d = Path(config_path).parent
        return cls(d / REMOTE_TOML, d / REMOTE_ENVELOPE)


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


def effective_data(local: dict[str, Any], config_path: Path, *, system: bool = False) -> dict[str, Any]:
    """What ``load_config`` validates: the local file with the facility's layer over it.

    A remote layer that can no longer be read, names a local-only key, or makes the merged config fail the
    schema (say, after an upgrade) is ignored with a log line, never fatal: the PC's own file alone always
    starts the agent, and `labedge status` says the layer is ignored and why.
    """
    if (local.get("remote") or {}).get("enabled") is False:
        return local
    try:
        got = read_remote(RemoteFiles.beside(config_path, system=system or local.get("mode") == "system"))
        if got is None:
            return local
        fragment, _ = got
        bad = local_only_keys(fragment)
        if bad:
            raise LayerError(f"names local-only keys: {', '.join(bad)}")
        merged = merge(local, fragment)
        from agent.config import validate_config_dict  # loaded already: load_config calls us
        validate_config_dict(merged, source=f"{config_path} with {REMOTE_TOML}")
    except (OSError, UnicodeDecodeError, LayerError, ConfigError) as exc:
        log.warning("ignoring the facility's layer %s beside %s: %s", REMOTE_TOML, config_path, exc)
        return local
    return merged

