"""In-memory health facts of the running agent, flushed to the state DB for `status` and the tray.

Components report problems (keyed, so a fixed problem disappears), progress of long operations
and facts (intake paused and why, broker connection, certificate expiry).
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
from typing import Any

from agent.state.store import StateStore
from agent.threads import Worker

log = logging.getLogger(__name__)


class Health:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._facts: dict[str, Any] = {}
        self._problems: dict[str, dict[str, Any]] = {}
        self._progress: dict[str, dict[str, Any]] = {}
        self._version = 0

    def set(self, key: str, value: Any) -> None:
        with self._lock:
            if self._facts.get(key) != value:
                self._facts[key] = value
                self._version += 1

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self._facts.get(key, default)

    def problem(self, key: str, message: str, *, kind: str = "error", ttl: float | None = None) -> None:
        """Report a problem under ``key``; with ``ttl`` it disappears by itself after that many seconds
        (for events that were handled, such as a file that vanished, but that the user should see)."""
        from agent.package.safe_names import path_text
        message, key = path_text(message), path_text(key)  # a file name that is not UTF-8 (security 10)
        with self._lock:
            old = self._problems.get(key)
            expires = None if ttl is None else time.time() + ttl
            if old is None or old["message"] != message or old.get("expires") != expires:
                self._problems[key] = {"message": message, "kind": kind, "since": time.time(),
                                       **({"expires": expires} if expires else {})}
                self._version += 1

    def clear_problem(self, key: str) -> None:
        with self._lock:
            if self._problems.pop(key, None) is not None:
                self._version += 1

    def clear_problems(self, prefix: str) -> None:
        with self._lock:
            for k in [k for k in self._problems if k.startswith(prefix)]:
                del self._problems[k]
                self._version += 1

    def progress(self, key: str, done: int, total: int, label: str = "") -> None:
        with self._lock:
            if done >= total > 0 or total == 0 and done < 0:
                self._progress.pop(key, None)
            else:
                self._progress[key] = {"done": done, "total": total, "label": label or key}
            self._version += 1

    def end_progress(self, key: str) -> None:
        with self._lock:
            if self._progress.pop(key, None) is not None:
                self._version += 1

    def snapshot(self) -> tuple[int, dict[str, Any]]:
        with self._lock:
            now = time.time()
            for k in [k for k, v in self._problems.items() if v.get("expires", now + 1) <= now]:
                del self._problems[k]
                self._version += 1
            return self._version, {"facts": dict(self._facts), "problems": dict(self._problems),
                                   "progress": dict(self._progress)}


class HealthFlusher(Worker):
    """Writes the health snapshot and a heartbeat to the state DB about once a second."""

    def __init__(self, health: Health, store: StateStore, interval: float = 1.0) -> None:
        super().__init__("health-flusher")
        self.health, self.store, self.interval = health, store, interval
        self._written = -1
        self._retry_seen: float | None = None
        self._last_error: str | None = None

    def poll_control(self) -> None:
        """Apply what the user asked for from the tray or the local page."""
        ctl = self.store.control()
        self.health.set("user_paused", bool(ctl.get("paused")))
        asked = ctl.get("retry_requested_at")
        if asked is not None and asked != self._retry_seen:
            if self._retry_seen is not None or asked > self.health.get("started_at", 0):
                self.store.retry_failed()
                self.health.set("retry_requested_at", asked)
            self._retry_seen = asked

    def flush(self) -> None:
        version, snap = self.health.snapshot()
        if version != self._written:
            self.store.set_health("agent", snap)
            self._written = version
        self.store.set_health("heartbeat", time.time())

    def loop_once(self) -> None:
        try:
            self.poll_control()
            self.flush()
        except (sqlite3.Error, OSError) as exc:
            # A full disk (or a locked DB) must not kill the agent: status goes stale, which
            # `labedge status` shows as a missing heartbeat; the next tick tries again.
            if str(exc) != self._last_error:
                log.warning("cannot write health to the state DB (%s); retrying every %.0f s", exc, self.interval)
                self._last_error = str(exc)
        else:
            self._last_error = None
        self.wait(self.interval)

    def run(self) -> None:
        super().run()
        try:
            self.flush()
        except (sqlite3.Error, OSError) as exc:
            log.warning("final health write failed: %s", exc)
