"""How the running agent takes in remote config: one call from ``Agent.start`` (agent/runner.py)."""
from __future__ import annotations

import logging
from typing import Any

from agent.config import ConfigError, load_config
from agent.remote.controller import RemoteController, settle_interrupted_trial

log = logging.getLogger(__name__)


def remote_enabled(cfg: Any) -> bool:
    r = cfg.raw.get("remote") or {}
    return bool(r.get("trust_root")) and r.get("enabled", True) is not False


def settle_before_start(config_path: Any, *, system: bool = False) -> None:
    """Before `run` loads (and checks) the merged config: undo a trial that a kill -9 or power loss cut short.

    The trial's layer may be exactly what stops the agent from starting (a missing watch folder), so this
    must come before the checks. Errors here are left to the normal load, which names them.
    """
    from agent.instance import AlreadyRunning, Instance

    try:
        local = load_config(config_path, check_watch_folders=False, remote=False, system=system)
    except ConfigError:
        return
    from agent.remote.state import StateDir

    try:
        if StateDir(local.state_dir).load().trial is None:
            return  # nothing to undo: take no lock (root must not create files in the service's folder)
    except OSError:
        return
    # Only the one agent of this config may touch its trial: a second `labedge run` on a running
    # agent's config must not roll back that agent's trial before its own start is refused.
    try:
        held = Instance(local).claim()
    except AlreadyRunning:
        return  # the agent that holds the locks owns the trial; `Agent(cfg)` refuses this start
    try:
        settle_interrupted_trial(local)
    finally:
        held.release()


def attach(agent: Any) -> RemoteController | None:
    """Roll back a trial a crash interrupted, then start the remote-config worker if [remote] is set."""
    if settle_interrupted_trial(agent.cfg):
        try:
            agent.cfg = load_config(agent.cfg.source, check_watch_folders=False, system=agent.cfg.mode == "system")
        except ConfigError as exc:
            log.error("after rolling back: %s; running with the config as loaded", exc)
        if getattr(agent, "_pairer_arg", None) is None:
            agent.pairer = agent._default_pairer()
    if not remote_enabled(agent.cfg):
        return None
    ctl = RemoteController(agent)
    agent.remote = ctl
    ctl.start()
    return ctl
