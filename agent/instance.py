"""One agent per state folder, per spool and per device id on this PC.

Two agents on one state folder or one spool each package every file (and each adopts the
other's packages at start-up), so the receiver stores everything twice. Two agents with one
device id upload under one certificate and one MQTT client id, taking the session from each
other. All three are held with kernel-released locks (agent.oslock): a crash never leaves a
stale lock, and `status` reads liveness from the state folder's lock.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config import Config
from agent.oslock import FileLock, LockHeld

log = logging.getLogger(__name__)

LOCK_NAME = "agent.lock"
#: Tests (and unusual installs) point the machine-wide device locks elsewhere.
DEVICE_LOCK_ENV = "LABEDGE_DEVICE_LOCK_DIR"


class AlreadyRunning(Exception):
    """Another agent holds this config's state folder, spool or device id; the message names it."""


def state_lock_path(cfg: Config) -> Path:
    return cfg.state_dir / LOCK_NAME


def device_lock_dir() -> Path:
    """Machine-wide, so agents of different users (a service and a manual run) see each other."""
    if os.environ.get(DEVICE_LOCK_ENV):
        return Path(os.environ[DEVICE_LOCK_ENV])
    if sys.platform == "win32":  # pragma: no cover - Windows only
        return Path(os.environ.get("ProgramData", r"C:\ProgramData")) / "labedge" / "locks"
    run_lock = Path("/run/lock")
    return run_lock if run_lock.is_dir() and os.access(run_lock, os.W_OK) else Path(tempfile.gettempdir())


def device_lock_path(device_id: str) -> Path:
    return device_lock_dir() / f"labedge-device-{device_id}.lock"  # device_id: schema-checked characters


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "another process (it did not say which)"
    return (f"PID {holder.get('pid', '?')} with config {holder.get('config', '?')} "
            f"(started {holder.get('started_at', '?')})")


@dataclass
class Instance:
    cfg: Config
    locks: list[FileLock] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "config": str(self.cfg.source), "device_id": self.cfg.device_id,
                "state_dir": str(self.cfg.state_dir), "spool_dir": str(self.cfg.spool_dir),
                "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}

    def claim(self) -> "Instance":
        """Take every lock or none; raises AlreadyRunning naming the agent that holds one."""
        cfg = self.cfg
        try:
            self._take_folder(cfg.state_dir, "state folder")
            self._take_folder(cfg.spool_dir, "spool")
            self._take_device()
        except BaseException:
            self.release()
            raise
        return self

    def _take(self, lock: FileLock, message) -> None:  # noqa: ANN001 - a (holder) -> str callable
        try:
            lock.acquire(self.info())
        except LockHeld as held:
            raise AlreadyRunning(message(held.holder)) from None
        self.locks.append(lock)

    def _take_folder(self, folder: Path, what: str) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._take(FileLock(folder / LOCK_NAME), lambda h: (
                f"another labedge agent is already running with the {what} {folder}: {_describe(h)}. "
                "Stop it first (`labedge status` shows it), or give this config its own state_dir and spool_dir"))
        except AlreadyRunning:
            raise
        except OSError as exc:  # e.g. the service's private folder, opened by another user
            raise AlreadyRunning(
                f"cannot lock the {what} {folder} ({exc.strerror or exc}): it belongs to another user, perhaps "
                "the labedge service (see `labedge status --system`); run as that user, or give this config its "
                "own state_dir and spool_dir") from None

    def _take_device(self) -> None:
        path = device_lock_path(self.cfg.device_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = FileLock(path, mode=0o644)  # readable by all: another user's agent must see who holds it
            self._take(lock, lambda h: (
                f"device id {self.cfg.device_id!r} is already used by a running labedge agent on this PC: "
                f"{_describe(h)}, state folder {h.get('state_dir', '?')}. One device id (one certificate) "
                "can run only once; stop that agent, or enroll this config as another device"))
        except AlreadyRunning:
            raise
        except OSError as exc:  # e.g. a file another user left in the shared lock folder
            log.warning("cannot check that device id %r runs only once on this PC (%s: %s); continuing",
                        self.cfg.device_id, path, exc.strerror or exc)

    def release(self) -> None:
        while self.locks:
            self.locks.pop().release()


def liveness(cfg: Config) -> tuple[bool | None, dict[str, Any]]:
    """Is an agent running on this config's state folder? (None: this user cannot tell.)"""
    return FileLock.probe(state_lock_path(cfg))
