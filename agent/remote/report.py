"""What `labedge status` and the local page say about remote config (one function computes it)."""
from __future__ import annotations

import sys
from typing import Any

from agent.config import Config
from agent.remote.layers import RemoteFiles, effective_data, facility_keys, read_remote
from agent.remote.state import StateDir
from wire.config_layer import LOCAL_ONLY, LayerError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def remote_status(cfg: Config) -> dict[str, Any] | None:
    """State, versions, and each key the facility sets (with the local value it overrides); None if unused."""
    files = RemoteFiles.beside(cfg.source, system=cfg.mode == "system")
    if not cfg.raw.get("remote") and not files.toml.exists():
        return None
    out: dict[str, Any] = {**StateDir(cfg.state_dir).load().report(), "keys": [], "layer_version": None,
                           "local_only": list(LOCAL_ONLY)}
    try:
        got = read_remote(files)
        local = tomllib.loads(cfg.source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, LayerError, tomllib.TOMLDecodeError) as exc:
        out["layer_error"] = f"{files.toml}: {exc}"
        return out
    if got is not None and effective_data(local, cfg.source, system=cfg.mode == "system") is local and (cfg.raw.get("remote") or {}).get(
            "enabled", True) is not False:
        out["layer_error"] = (f"{files.toml} is IGNORED (the agent runs on labedge.toml alone): it names a "
                              "local-only key or no longer passes the config schema; see the agent's log")
    if got is not None:
        fragment, record = got
        out["layer_version"] = record.get("version")
        out["layer_signer"] = record.get("signer")
        out["keys"] = [{**k, "version": record.get("version")} for k in facility_keys(local, fragment)]
    return out


def describe_remote(r: dict[str, Any] | None) -> list[str]:
    """Lines for `labedge status` (and the local page): the state, then each key from the facility."""
    if not r:
        return []
    state = r.get("state", "none")
    head = {"none": "no remote config received",
            "applied": f"version {r.get('applied_version')} applied",
            "trial": f"trying version {r.get('version')} (kept only if the agent works with it)",
            "refused": f"version {r.get('version')} REFUSED: {r.get('reason')}",
            "rolled_back": f"version {r.get('version')} ROLLED BACK: {r.get('reason')}"}.get(state, state)
    lines = [f"  remote config: {head}"
             + (f"; running version {r['applied_version']}" if state in ("refused", "rolled_back")
                and r.get("applied_version") else "")]
    if r.get("layer_error"):
        lines.append(f"  remote config file problem: {r['layer_error']}")
    for k in r.get("keys", []):
        if k["differs"]:
            was = "does not set it" if k["local"] is None else f"says {k['local']!r}"
            lines.append(f"    {k['key']} = {k['value']!r}  (from the facility, version {k['version']}; "
                         f"your labedge.toml {was}: the facility's value wins)")
    if r.get("keys"):
        lines.append("    only the local-only keys (" + ", ".join(r.get("local_only", [])) +
                     ") always follow labedge.toml")
    return lines


def page_lines(r: dict[str, Any] | None, lang: str = "en") -> list[tuple[str, str]]:
    """(kind, text) rows for the local page's status card: the same words as `labedge status`."""
    lines = describe_remote(r)
    if not lines:
        return []
    kind = "warning" if (r or {}).get("state") in ("refused", "rolled_back") else "info"
    head = lines[0].strip().replace("remote config: ", "リモート設定（施設）: " if lang == "ja" else "Remote config: ", 1)
    return [(kind, head)] + [("info", x.strip()) for x in lines[1:]]
