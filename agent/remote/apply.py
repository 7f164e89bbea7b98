"""Checks before apply, and the file moves of stage / commit / roll back.

A document is refused (the old config stays in force, the reason is recorded and reported) unless:
its signature chains to the pinned root; the key is not revoked; it is within its validity; its
version is greater than any applied or tried; it targets this device or one of its groups; it names
no local-only key; and the merged config passes the schema (and ``labedge check`` where available).
"""
from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import Config, ConfigError, parse_config
from agent.remote.layers import LayerError, RemoteFiles, local_only_keys, merge, parse_fragment
from agent.remote.state import RemoteState, StateDir, remove_durably
from wire.durable import write_atomic
from wire import signed

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)
KIND = "config"
DEFAULT_TRIAL_SECONDS = 120.0


class Refused(Exception):
    def __init__(self, code: str, reason: str, version: int | None = None) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason
        self.version = version      # set once the signature checked out: the facility really wants it


@dataclass(frozen=True)
class Candidate:
    verified: signed.Verified
    text: str                 # the TOML fragment, as the facility wrote it
    fragment: dict[str, Any]
    merged: Config            # what the agent will run with
    digest: str


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def remote_settings(cfg: Config) -> dict[str, Any]:
    return dict(cfg.raw.get("remote") or {})


def groups_of(cfg: Config) -> list[str]:
    return list(remote_settings(cfg).get("groups") or [])


def trial_seconds(cfg: Config) -> float:
    return float(remote_settings(cfg).get("trial_seconds", DEFAULT_TRIAL_SECONDS))


def pinned_root(cfg: Config) -> signed.Ed25519PublicKey:
    tr = remote_settings(cfg).get("trust_root")
    if not tr:
        raise Refused("no_trust_root", f"{cfg.source}: [remote] trust_root is not set, so no signed config can "
                                       "be checked; set it to the facility's root.pub")
    path = Path(tr) if Path(tr).is_absolute() else cfg.source.parent / tr
    try:
        return signed.load_public_pem(path.read_bytes(), what=f"[remote] trust_root {path}")
    except OSError as exc:
        raise Refused("no_trust_root", f"[remote] trust_root {path}: {exc.strerror or exc}") from None
    except signed.SignedError as exc:
        raise Refused("no_trust_root", exc.reason) from None


def trust_root_problem(cfg: Config) -> str | None:
    """For `labedge check`: why a set [remote] trust_root cannot be used (None when fine or not set)."""
    if not remote_settings(cfg).get("trust_root"):
        return None
    try:
        pinned_root(cfg)
    except Refused as exc:
        return f"{exc.reason}; configs pushed by the facility would all be refused"
    return None


def read_local(cfg: Config) -> dict[str, Any]:
    """The PC's own file as it is now (not the merged view)."""
    try:
        return tomllib.loads(cfg.source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise Refused("local_unreadable", f"{cfg.source}: cannot read the local config ({exc})") from None


def check_document(data: bytes, cfg: Config, st: RemoteState, *, now: float | None = None) -> Candidate:
    """Every check before apply. Updates ``st.trust`` when the bundle brought newer trust documents."""
    now = time.time() if now is None else now
    pinned = pinned_root(cfg)
    try:
        trust = signed.TrustStore.from_state(pinned, st.trust, now)
    except signed.SignedError as exc:
        # what was stored no longer chains to the pinned root (the PC's trust_root was changed on purpose,
        # or the state file was edited): start again from the pinned root alone
        log.warning("remote config: stored trust documents dropped (%s); starting from the pinned root", exc.reason)
        trust = signed.TrustStore(pinned)
    try:
        v, changed = signed.open_bundle(data, trust, now, kind=KIND)
    except signed.SignedError as exc:
        raise Refused(exc.code, exc.reason) from None
    finally:
        st.trust = trust.state()  # newer root-signed lists are authentic even if the document is refused
    del changed
    try:
        return _check_verified(v, data, cfg, st)
    except Refused as exc:
        exc.version = v.version
        raise


def _check_verified(v: signed.Verified, data: bytes, cfg: Config, st: RemoteState) -> Candidate:
    groups = groups_of(cfg)
    if not v.targets_device(cfg.device_id, groups):
        t = v.targets
        raise Refused("wrong_target", f"version {v.version} is for devices {t.get('devices') or []} and groups "
                                      f"{t.get('groups') or []}, not this device ({cfg.device_id}, groups {groups})")
    floor = max(st.applied_version, st.tried_version)
    if v.version <= floor:
        raise Refused("stale_version", f"version {v.version} is not newer than version {floor} already applied "
                                       "or tried here (a replay or a downgrade)")
    payload = v.payload
    if not isinstance(payload, dict) or not isinstance(payload.get("toml"), str):
        raise Refused("malformed", "the config document's payload has no TOML text")
    try:
        fragment = parse_fragment(payload["toml"])
        bad = local_only_keys(fragment)
    except LayerError as exc:
        raise Refused("invalid", str(exc)) from None
    if bad:
        raise Refused("local_only", f"the facility may not set {', '.join(bad)}: only this PC's own "
                                    f"{cfg.source.name} can (local-only keys)")
    merged_data = merge(read_local(cfg), fragment)
    try:
        merged = parse_config(merged_data, source=cfg.source, check_watch_folders=False, system=cfg.mode == "system")
    except ConfigError as exc:
        raise Refused("invalid", f"the merged config is not valid: {exc}") from None
    problems = _run_checks(merged)
    if problems:
        raise Refused("check_failed", "`labedge check` finds: " + "; ".join(problems))
    return Candidate(v, payload["toml"], fragment, merged, digest_of(data))


def _run_checks(cfg: Config) -> list[str]:
    """`labedge check`'s offline checks (agent/check.py) on the merged config.

    Watch folders are left to the trial, which tries them on the running agent (a share may be mounted
    only for the service's account); problems `run` starts with anyway (upload files: local-only, so
    not the push's doing) do not refuse a push either.
    """
    try:
        from agent.check import config_problems
    except ImportError:  # pragma: no cover - a build without `labedge check`: the schema check above
        return []
    return [p.message for p in config_problems(cfg)
            if p.severity == "error" and p.stops_run and not p.where.endswith(".watch")]


# ------------------------------------------------------------------------------ files
def _header(c: Candidate) -> str:
    v = c.verified
    return (f"# Set by the facility: remote config version {v.version}, signed by {v.signer!r} (key {v.key_id}).\n"
            "# Do not edit: the next push replaces this file. Keys here win over labedge.toml, except the\n"
            "# local-only keys, which the facility can never set. See docs/remote-config.md.\n")


def stage(c: Candidate, files: RemoteFiles, sd: StateDir, st: RemoteState, *, trial_for: float,
          bundle: bytes, topic: str) -> None:
    """Record the trial FIRST, then write the new layer: a crash in between rolls back at start."""
    v = c.verified
    st.trial = {"version": v.version, "signer": v.signer, "started_at": time.time(),
                "deadline": time.time() + trial_for}
    st.tried_version = max(st.tried_version, v.version)
    st.desired_version = max(st.desired_version, v.version)
    st.outcome("trial", v.version, f"trying version {v.version} for {trial_for:.0f} s")
    sd.save(st)
    envelope = {"document": v.document, "signer": v.signer, "applied_at": time.time(), "topic": topic,
                "bundle_sha256": c.digest}
    write_atomic(files.envelope, json.dumps(envelope, indent=1, sort_keys=True).encode("utf-8"), mode=0o644)
    write_atomic(files.toml, (_header(c) + c.text).encode("utf-8"), mode=0o644)


def commit(files: RemoteFiles, sd: StateDir, st: RemoteState) -> int:
    """The trial passed: the new layer becomes the last known good."""
    assert st.trial is not None
    version = int(st.trial["version"])
    sd.ensure()
    for src in (files.toml, files.envelope):
        write_atomic(sd.lkg / src.name, src.read_bytes())
    st.applied_version, st.applied_signer, st.applied_at = version, st.trial.get("signer"), time.time()
    st.trial = None
    st.outcome("applied", version, "")
    sd.save(st)
    return version


def restore_last_known_good(files: RemoteFiles, sd: StateDir, st: RemoteState, reason: str) -> int:
    """Put the last known good layer back (or none), and record why."""
    version = int((st.trial or {}).get("version", st.event_version))
    for dst in (files.toml, files.envelope):
        good = sd.lkg / dst.name
        if good.exists():
            write_atomic(dst, good.read_bytes(), mode=0o644)
        else:
            remove_durably(dst)
    st.trial = None
    st.outcome("rolled_back", version, reason)
    sd.save(st)
    return version
