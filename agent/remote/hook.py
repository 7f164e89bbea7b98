"""How the running agent takes in remote config: one call from ``Agent.start`` (agent/runner.py)."""
from __future__ import annotations

import logging
from typing import Any

from agent.config import ConfigError, load_config
from agent.remote.controller import RemoteController, config_topics, settle_interrupted_trial

log = logging.getLogger(__name__)


def remote_enabled(cfg: Any) -> bool:
    r = cfg.raw.get("remote") or {}
    return bool(r.get("trust_root")) and r.get("enabled", True) is not False


def attach(agent: Any) -> RemoteController | None:
    """Roll back a trial a crash interrupted, then start the remote-config worker if [remote] is set."""
    if settle_interrupted_trial(agent.cfg):
        try:
            agent.cfg = load_config(agent.cfg.source, check_watch_folders=False)
        except ConfigError as exc:
            log.error("after rolling back: %s; running with the config as loaded", exc)
        if getattr(agent, "_pairer_arg", None) is None:
            agent.pairer = agent._default_pairer()
    if not remote_enabled(agent.cfg):
        return None
    ctl = RemoteController(agent)
    agent.remote = ctl
    ctl.start()
    _subscribe(agent, ctl)
    return ctl


def _subscribe(agent: Any, ctl: RemoteController) -> None:
    """Deliver the retained config documents on this device's topics to the worker.

    The shared MQTT channel (agent/fleet/channel.py) carries them over the uploader's one connection.
    """
    try:
        from agent.fleet.channel import channel_for  # type: ignore[import-not-found]
    except ImportError:
        log.info("remote config: no MQTT channel in this build; documents only through RemoteController.submit")
        return
    channel = channel_for(agent)
    for topic in config_topics(agent.cfg):
        channel.subscribe(topic, lambda payload, topic_=topic, **_: ctl.submit(payload, topic_))
