"""Remote commands on the device: check, remember, execute, answer (wire/commands.py has the format).

A command is executed only if ALL hold:
- it arrived on this device's own ``cmd/<id>`` topic (the broker ACL: only the administrator
  identity may write there);
- it is a bundle whose envelope verifies against the pinned root (``[remote] trust_root``) and a
  root-signed administrator key list (:mod:`wire.signed`): a compromised broker or device holds no
  administrator key, so it cannot make one;
- it targets exactly this device, its signed id equals the topic's, and it has not expired;
- its id was never handled before (the ``commands`` table): a replayed copy gets the stored result
  again, marked ``replayed``, and does nothing.
The MQTT thread only enqueues; this worker verifies and executes, so a diagnostics bundle never
stalls uploads.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import time
from pathlib import Path
from typing import Any, Callable, Protocol

from agent.config import Config
from agent.health import Health
from agent.state.store import StateStore
from agent.threads import Worker
from wire import commands as C
from wire import signed, topics
from wire.protocol import ProtocolError

log = logging.getLogger(__name__)

INBOX_MAX = 64
TRUST_KEY = "command_trust"
#: Ids are remembered until this long after their command expired (then an old copy is refused as expired).
REMEMBER_AFTER_EXPIRY = 2 * 24 * 3600.0


class Actions(Protocol):
    def retry(self) -> str: ...
    def pause(self, reason: str) -> str: ...
    def resume(self) -> str: ...
    def rescan(self) -> str: ...
    def diagnostics(self, cmd_id: str) -> str: ...
    def renew(self, done: Callable[[bool, str], None]) -> str: ...


class Refused(Exception):
    """The command is not executed; the text is what the administrator reads."""


class CommandLog:
    """The ``commands`` table: ids handled and their final results."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def get(self, cmd_id: str) -> dict[str, Any] | None:
        with self.store._lock:
            row = self.store.conn.execute("SELECT result FROM commands WHERE id=?", (cmd_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def claim(self, cmd_id: str, action: str, signer: str, expires_at: float) -> bool:
        """Record the id before executing (so a crash mid-way never runs it twice). False if known."""
        with self.store.transaction() as conn:
            cur = conn.execute("INSERT OR IGNORE INTO commands (id, action, signer, received_at, expires_at, status,"
                               " result) VALUES (?,?,?,?,?,'accepted','{}')",
                               (cmd_id, action, signer, time.time(), expires_at))
            return cur.rowcount == 1

    def finish(self, cmd_id: str, status: str, result: bytes) -> None:
        with self.store.transaction() as conn:
            conn.execute("UPDATE commands SET status=?, result=? WHERE id=?", (status, result.decode(), cmd_id))

    def prune(self, now: float) -> int:
        with self.store.transaction() as conn:
            return conn.execute("DELETE FROM commands WHERE expires_at < ?", (now - REMEMBER_AFTER_EXPIRY,)).rowcount


def pinned_root(cfg: Config) -> signed.Ed25519PublicKey:
    """The facility's root key from ``[remote] trust_root`` (shared with signed remote configuration)."""
    tr = (cfg.raw.get("remote") or {}).get("trust_root")
    if not tr:
        raise Refused(f"this device takes no remote commands: {cfg.source} has no [remote] trust_root "
                      "(the facility's root.pub)")
    p = Path(os.path.expandvars(os.path.expanduser(tr)))
    p = p if p.is_absolute() else cfg.source.parent.resolve() / p
    try:
        return signed.load_public_pem(p.read_bytes(), what=f"[remote] trust_root {p}")
    except OSError as exc:
        raise Refused(f"[remote] trust_root {p}: {exc.strerror or exc}") from None
    except signed.SignedError as exc:
        raise Refused(exc.reason) from None


class CommandExecutor(Worker):
    def __init__(self, cfg: Config, store: StateStore, health: Health, publish: Callable[[str, bytes], None],
                 actions: Actions, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__("commands")
        assert cfg.upload is not None
        self.cfg, self.store, self.health, self.publish, self.actions = cfg, store, health, publish, actions
        self.prefix = cfg.upload.topic_prefix
        self.device = cfg.device_id
        self.log = CommandLog(store)
        self.clock = clock
        self.inbox: queue.Queue[tuple[str, bytes]] = queue.Queue(maxsize=INBOX_MAX)
        self.later: queue.SimpleQueue[tuple[str, str, str, str]] = queue.SimpleQueue()
        self.filter = topics.device_command_filter(self.prefix, self.device)
        self._last_prune = 0.0

    # ------------------------------------------------------------------ from the MQTT thread
    def submit(self, topic: str, payload: bytes) -> None:
        try:
            self.inbox.put_nowait((topic, bytes(payload)))
        except queue.Full:  # a flood: drop, never block the uploader (a real command is re-sent by --wait)
            log.warning("remote commands: inbox full, dropped a message on %s", topic[:200])

    def wake(self) -> None:
        try:
            self.inbox.put_nowait(("", b""))
        except queue.Full:
            pass

    # ------------------------------------------------------------------ the worker
    def loop_once(self) -> None:
        try:
            topic, payload = self.inbox.get(timeout=5.0)
        except queue.Empty:
            topic = ""
        now = self.clock()
        if now - self._last_prune > 3600:
            self._last_prune = now
            self.log.prune(now)
        while not self.later.empty():  # deferred results (renew-certificate), from the uploader's thread
            self._answer(*self.later.get_nowait())
        if topic:
            try:
                self.handle(topic, payload)
            except Exception:  # noqa: BLE001 - one bad command must not end remote administration
                log.exception("remote command on %s failed", topic[:200])

    def handle(self, topic: str, payload: bytes) -> None:
        try:
            kind, device, cmd_id = topics.parse_fleet_topic(self.prefix, topic)
        except ProtocolError:
            return
        if kind != "cmd" or device != self.device or cmd_id is None:
            return
        action: str | None = None
        try:
            v = self._verify(payload)
            action, args = C.check_payload(v.payload, cmd_id)
            if v.targets != {"devices": [self.device]}:
                raise Refused(f"the command is addressed to {json.dumps(v.targets)[:200]}, not only to this "
                              f"device ({self.device})")
        except (Refused, ProtocolError) as exc:
            self._answer(cmd_id, action, "refused", str(exc))
            return
        except signed.SignedError as exc:
            self._answer(cmd_id, action, "refused", f"{exc.reason} ({exc.code})")
            return
        if not self.log.claim(cmd_id, action, v.signer, v.expires.timestamp()):
            old = self.log.get(cmd_id) or {}
            log.info("remote command %s (%s) is a replayed copy: not executed again", cmd_id, action)
            again = {k: old.get(k) for k in ("status", "message")} if old.get("status") in C.FINAL else \
                {"status": "refused", "message": "this command id is already being handled"}
            self._answer(cmd_id, action, again["status"] or "refused", again["message"] or "", replayed=True,
                         record=False)
            return
        log.info("remote command %s from administrator %r: %s %s", cmd_id, v.signer, action,
                 args.get("reason", ""))
        self._execute(cmd_id, action, args)

    def _verify(self, payload: bytes) -> signed.Verified:
        saved = self._trust_state()
        trust = signed.TrustStore.from_state(pinned_root(self.cfg), saved, self.clock())
        self._take_remote_config_trust(trust)
        try:
            v, _changed = signed.open_bundle(payload, trust, self.clock(), kind=C.KIND)
        finally:
            # newer root-signed lists are authentic even when the command itself is refused: keep them,
            # so a key revoked once stays revoked here (no downgrade by an older list later)
            if trust.state() != (saved or {"roots": [], "admin_keys": None}):
                self.store.set_health(TRUST_KEY, trust.state())
        if (v.expires - v.not_before).total_seconds() > C.MAX_VALID_SECONDS:
            raise Refused(f"the command is valid for more than {C.MAX_VALID_SECONDS // 86400} days; "
                          "commands must expire soon")
        return v

    def _trust_state(self) -> dict[str, Any] | None:
        return (self.store.health().get(TRUST_KEY) or {}).get("value")

    def _take_remote_config_trust(self, trust: signed.TrustStore) -> None:
        """A newer key list (an administrator revoked, say) that came with a signed config counts here too.

        Read-only: the remote-config worker owns ``<state_dir>/remote/state.json`` (written atomically);
        every document in it is verified again against the pinned root, never just trusted."""
        try:
            other = json.loads((self.cfg.state_dir / "remote" / "state.json").read_text(encoding="utf-8"))["trust"]
        except (OSError, ValueError, KeyError, TypeError):
            return
        if not isinstance(other, dict):
            return
        now = self.clock()
        for doc in (other.get("roots") or [])[:signed.MAX_ROOT_CHAIN]:
            try:
                trust.accept_root_rotation(doc, now)
            except signed.SignedError:
                pass
        if other.get("admin_keys"):
            try:
                trust.accept_admin_keys(other["admin_keys"], now)
            except signed.SignedError:
                pass  # older than ours, or expired: ours stays

    def _execute(self, cmd_id: str, action: str, args: dict[str, Any]) -> None:
        a = self.actions
        try:
            if action == "renew-certificate":
                def done(ok: bool, message: str) -> None:  # later, on the uploader's thread: only enqueue
                    self.later.put((cmd_id, action, "done" if ok else "failed", message))
                    self.wake()
                self._answer(cmd_id, action, "accepted", a.renew(done), record=False)
                return
            message = {"retry": a.retry, "resume": a.resume, "rescan": a.rescan}[action]() \
                if action in ("retry", "resume", "rescan") else \
                a.pause(args.get("reason") or "no reason given") if action == "pause" else a.diagnostics(cmd_id)
        except Exception as exc:  # noqa: BLE001 - the administrator gets the failure in words
            log.exception("remote command %s (%s) failed", cmd_id, action)
            self._answer(cmd_id, action, "failed", f"{type(exc).__name__}: {exc}"[:500])
            return
        self._answer(cmd_id, action, "done", message)

    def _answer(self, cmd_id: str, action: str | None, status: str, message: str, *, replayed: bool = False,
                record: bool = True) -> None:
        data = C.result_message(cmd_id, self.device, action, status, message, replayed=replayed)
        if record and status in C.FINAL and action is not None and self.log.get(cmd_id) is not None:
            self.log.finish(cmd_id, status, data)
        if status == "refused" and not replayed:
            log.warning("remote command %s refused: %s", cmd_id, message)
            self.health.problem("fleet:command-refused", f"a remote command was refused: {message}", kind="warning",
                                ttl=3600)
        self.health.set("last_command", {"id": cmd_id, "action": action, "status": status, "message": message[:300],
                                         "at": time.time()})
        self.publish(topics.command_result_topic(self.prefix, self.device, cmd_id), data)


class AgentActions:
    """What each action does in the running agent (the tray's and the local page's own mechanisms)."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent

    def retry(self) -> str:
        n = self.agent.store.retry_failed()
        if self.agent.uploader is not None:
            self.agent.uploader.wake()
        return f"{n} failed package(s) put back in the upload queue"

    def pause(self, reason: str) -> str:
        # the same control record the tray and the local page write; the agent applies it within a second
        self.agent.store.set_control(paused=True, paused_by="facility", pause_reason=reason, paused_at=time.time())
        return f"collection paused by the facility: {reason}"

    def resume(self) -> str:
        self.agent.store.set_control(paused=False, paused_by=None, pause_reason=None, paused_at=None)
        return "collection resumed"

    def rescan(self) -> str:
        for w in self.agent.watchers.values():
            w.rescan_now()
        return f"rescan started for {len(self.agent.watchers)} instrument(s): " + ", ".join(self.agent.watchers)

    def diagnostics(self, cmd_id: str) -> str:
        from agent.fleet.diagnostics import build_diagnostics
        built = build_diagnostics(self.agent.cfg, self.agent.store, self.agent.spool, cmd_id)
        if self.agent.uploader is not None:
            self.agent.uploader.wake()
        return f"diagnostics bundle {built.id} queued for upload ({built.nbytes} bytes)"

    def renew(self, done: Callable[[bool, str], None]) -> str:
        up = self.agent.uploader
        if up is None:
            raise RuntimeError("this PC has no [upload] section: there is no certificate to renew")
        up.renewer.request_now(done)
        up.wake()
        return "certificate renewal started; the result follows when the new certificate works"


def attach_commands(agent: Any) -> CommandExecutor | None:
    """Make the command worker and subscribe it on the agent's one MQTT connection (None when offline)."""
    if agent.channel is None or agent.cfg.upload is None:
        return None
    ex = CommandExecutor(agent.cfg, agent.store, agent.health, agent.channel.publish, AgentActions(agent))
    agent.channel.subscribe(ex.filter, ex.submit)
    return ex
