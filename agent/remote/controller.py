"""The device's remote-config worker: receive, check, stage, reload in process, trial, commit or roll back.

Documents arrive on the MQTT thread and are only queued here (``submit``); this worker does the rest,
so a reload (which stops and restarts the uploader) never runs on the uploader's own thread. The
worker is not one of the agent's components: it lives across reloads.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, Protocol

from agent.config import Config, ConfigError, load_config
from agent.remote import apply
from agent.remote.layers import RemoteFiles
from agent.remote.state import RemoteState, StateDir
from agent.remote.trial import judge
from agent.threads import Worker
from wire import signed

log = logging.getLogger(__name__)
INBOX_MAX = 16
HEALTH_FACT = "remote_config"
IDLE_WAIT = 30.0


class Host(Protocol):
    cfg: Config
    health: Any
    threads: list[threading.Thread]

    def reload(self, cfg: Config) -> list[str]: ...


def _claimed_version(data: bytes) -> int:
    """The version a document claims (for the report only; never trusted for anything)."""
    try:
        v = signed.parse_json(data, limit=signed.MAX_BUNDLE_BYTES)["document"]["version"]
        return v if type(v) is int and v > 0 else 0
    except Exception:
        return 0


def _status_config_fields() -> set[str] | None:
    try:
        from wire import status as S  # the fleet status document, where it is built in
        return set(S.SCHEMA["properties"]["config"]["properties"])
    except (ImportError, KeyError, AttributeError, TypeError):
        return None


def config_topics(cfg: Config) -> list[str]:
    """Where this device's config documents are retained: its own topic and one per group."""
    prefix = cfg.upload.topic_prefix if cfg.upload is not None else "rde"
    return [f"{prefix}/{cfg.device_id}/config"] + [f"{prefix}/group/{g}/config" for g in apply.groups_of(cfg)]


def settle_interrupted_trial(cfg: Config) -> bool:
    """At start: a trial that never committed (kill -9, power loss) is rolled back. True if it was."""
    sd = StateDir(cfg.state_dir)
    st = sd.load()
    if st.trial is None:
        return False
    version = st.trial.get("version")
    reason = (f"the agent stopped during the trial of version {version} (killed or power lost) before it "
              "was kept; rolled back at the next start")
    apply.restore_last_known_good(RemoteFiles.beside(cfg.source, system=cfg.mode == "system"), sd, st, reason)
    sd.audit("rolled_back", version=version, reason=reason)
    log.warning("remote config: %s", reason)
    return True


class RemoteController(Worker):
    def __init__(self, host: Host, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__("remote-config")
        self.host = host
        self.files = RemoteFiles.beside(host.cfg.source, system=host.cfg.mode == "system")
        self.sd = StateDir(host.cfg.state_dir)
        self.st: RemoteState = self.sd.load()
        self.inbox: queue.Queue[tuple[bytes, str] | None] = queue.Queue(maxsize=INBOX_MAX)
        self.clock = clock
        self._deferred: tuple[bytes, str] | None = None    # arrived during a trial: handled after it
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._publisher: Any = None
        self.publish_report()

    # ------------------------------------------------------------------ wiring (every start and reload)
    def bind(self, agent: Any) -> None:
        """Subscribe this device's config topics on the agent's (new) MQTT channel; report in its status."""
        channel = getattr(agent, "channel", None)
        if channel is not None:
            for topic in config_topics(agent.cfg):
                channel.subscribe(topic, lambda t, payload: self.submit(payload, t))
        publisher = getattr(agent, "status_publisher", None)
        if publisher is not None and hasattr(publisher, "config_info"):
            publisher.config_info = self.status_section
        self._publisher = publisher  # told at once when the state changes (the new one after a reload)

    def status_section(self) -> dict[str, Any]:
        """The `config` part of the fleet status document (wire/status.py)."""
        r = self.report()
        out = {"version": str(r["applied_version"]), "state": r["state"], "error": (r["reason"] or "")[:400],
               "desired_version": r["desired_version"], "applied_version": r["applied_version"],
               "event_version": r["version"], "groups": apply.groups_of(self.host.cfg)[:16]}
        allowed = _status_config_fields()
        # a status schema that does not list a field yet would make the facility call the whole
        # document unreadable: send only what it takes (docs/remote-config.md, "States")
        return out if allowed is None else {k: v for k, v in out.items() if k in allowed}

    # ------------------------------------------------------------------ inputs
    def submit(self, data: bytes, topic: str = "") -> None:
        """Called from the MQTT thread: only enqueue (a flood drops the newest, never blocks MQTT)."""
        try:
            self.inbox.put_nowait((bytes(data), topic))
        except queue.Full:
            log.warning("remote config: inbox full, dropped a document from %s", topic)

    def wake(self) -> None:
        """Interrupt the idle wait (used by stop): a None in the inbox."""
        try:
            self.inbox.put_nowait(None)
        except queue.Full:
            pass  # it is awake anyway: there is work queued

    def on_report(self, fn: Callable[[dict[str, Any]], None]) -> None:
        self._listeners.append(fn)

    def report(self) -> dict[str, Any]:
        return self.st.report()

    def publish_report(self) -> None:
        rep = self.report()
        self.host.health.set(HEALTH_FACT, rep)
        publish_now = getattr(self._publisher, "publish_now", None)
        for fn in [*self._listeners, *([lambda _r: publish_now()] if publish_now else [])]:
            try:
                fn(rep)
            except Exception:
                log.exception("remote config: a report listener failed")

    # ------------------------------------------------------------------ loop
    def loop_once(self) -> None:
        # idle: wait long (submit and stop wake us); during a trial: look at the agent 5 times a second
        try:
            item = self.inbox.get(timeout=0.2 if self.st.trial is not None or self._deferred else IDLE_WAIT)
        except queue.Empty:
            item = None
        if self.stopping:
            return
        if item is not None:
            if self.st.trial is not None:
                self._deferred = item  # one change at a time: the newest waits for the trial's end
            else:
                self.handle(*item)
        if self.st.trial is not None:
            self.tick()
        elif self._deferred is not None:
            item, self._deferred = self._deferred, None
            self.handle(*item)

    # ------------------------------------------------------------------ a document
    def handle(self, data: bytes, topic: str) -> str:
        digest = apply.digest_of(data)
        if digest in self.st.seen:
            return "seen"   # the retained copy again, after a reconnect: already handled
        self.st.remember(digest)
        cfg = self.host.cfg
        self.sd.audit("received", topic=topic, bytes=len(data), claimed_version=_claimed_version(data))
        try:
            cand = apply.check_document(data, cfg, self.st, now=self.clock())
        except apply.Refused as exc:
            return self._refuse(exc, data, topic)
        except Exception as exc:  # a bug or a file-system error refuses the document, never kills the worker
            log.exception("remote config: checking a document failed")
            return self._refuse(apply.Refused("internal", f"the agent could not check it ({type(exc).__name__}: "
                                                          f"{exc})"), data, topic)
        v = cand.verified
        trial_for = apply.trial_seconds(cand.merged)  # [remote] is local-only: the PC's own file decides
        apply.stage(cand, self.files, self.sd, self.st, trial_for=trial_for, bundle=data, topic=topic)
        self.sd.audit("trial", version=v.version, signer=v.signer, key_id=v.key_id, topic=topic,
                      trial_seconds=trial_for)
        log.info("remote config version %d from %s accepted; trying it for %.0f s", v.version, v.signer, trial_for)
        self.publish_report()
        try:
            self._reload()
        except Exception as exc:  # could not even start with it: back at once
            self.rollback(f"the agent could not start with version {v.version}: {exc}")
        return "trial"

    def _refuse(self, exc: apply.Refused, data: bytes, topic: str) -> str:
        version = exc.version if exc.version is not None else _claimed_version(data)
        if exc.version is not None and exc.code != "wrong_target":
            self.st.desired_version = max(self.st.desired_version, exc.version)
        self.sd.audit("refused", version=version, code=exc.code, reason=exc.reason, topic=topic)
        self.st.outcome("refused", version, exc.reason)
        self.sd.save(self.st)
        log.warning("remote config version %s refused: %s", version, exc.reason)
        self.publish_report()
        return "refused"

    def tick(self) -> None:
        trial = self.st.trial
        assert trial is not None
        host = self.host
        publisher = getattr(host, "status_publisher", None)
        verdict = judge(host.cfg, list(host.threads), host.health.snapshot()[1]["facts"],
                        status_sent=getattr(publisher, "sent", None) if publisher is not None else None)
        if verdict.fatal:
            self.rollback(verdict.fatal)
        elif self.clock() >= float(trial["deadline"]):
            if verdict.pending:
                self.rollback(f"within the {apply.trial_seconds(host.cfg):.0f} s trial: {verdict.pending}")
            else:
                version = apply.commit(self.files, self.sd, self.st)
                self.sd.audit("applied", version=version, signer=self.st.applied_signer)
                log.info("remote config version %d kept after its trial", version)
                self.publish_report()

    def rollback(self, reason: str) -> None:
        version = apply.restore_last_known_good(self.files, self.sd, self.st, reason)
        self.sd.audit("rolled_back", version=version, reason=reason)
        log.error("remote config version %d rolled back: %s", version, reason)
        try:
            self._reload()
        except Exception:
            log.exception("remote config: reload with the last known good config failed")
        self.publish_report()

    def _reload(self) -> None:
        try:
            cfg = load_config(self.host.cfg.source, check_watch_folders=False,
                              system=self.host.cfg.mode == "system")  # `run --system` stays system
        except ConfigError as exc:
            raise RuntimeError(str(exc)) from None
        leaked = self.host.reload(cfg)
        if leaked:
            raise RuntimeError(f"threads did not stop for the reload: {', '.join(leaked)}")
