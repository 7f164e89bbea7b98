"""The intake gate: stop taking new measurements when the spool is full or the disk is low.

Nothing is dropped: a measurement that cannot be taken waits (in memory now, and on disk in the
instrument's folder, where the catch-up scan finds it after a restart).
"""
from __future__ import annotations

import errno
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from agent.state.store import StateStore
from wire.words import human  # noqa: F401 - re-exported: the agent's surfaces format sizes with it


@dataclass
class IntakeGate:
    store: StateStore
    spool_dir: Path
    spool_max_bytes: int
    min_free_bytes: int

    def blocked_reason(self, incoming_bytes: int) -> str | None:
        """None when a measurement of ``incoming_bytes`` may be taken in now, else why not."""
        used = self.store.spool_bytes()
        if incoming_bytes > self.spool_max_bytes:
            return (f"spool full: a measurement of {human(incoming_bytes)} is larger than spool_max_bytes "
                    f"({human(self.spool_max_bytes)}); raise spool_max_bytes to take it")
        if used + incoming_bytes > self.spool_max_bytes:
            return (f"spool full: {human(used)} of {human(self.spool_max_bytes)} (spool_max_bytes) used by "
                    "packages waiting for upload; intake resumes when they are delivered")
        return disk_low_reason(self.spool_dir, self.min_free_bytes, incoming_bytes)


def disk_low_reason(spool_dir: Path, min_free_bytes: int, incoming_bytes: int = 0) -> str | None:
    """Why the spool's disk cannot take ``incoming_bytes`` more (the gate and `status` both ask)."""
    free = shutil.disk_usage(spool_dir).free
    if free - incoming_bytes < min_free_bytes:
        need = f"need {human(incoming_bytes)} plus" if incoming_bytes else "below"
        return (f"low disk: {human(free)} free on the spool's disk ({spool_dir}), "
                f"{need} min_free_bytes ({human(min_free_bytes)}); intake resumes when space is freed")
    return None


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.OperationalError):  # SQLite reports ENOSPC as SQLITE_FULL
        return getattr(exc, "sqlite_errorcode", None) == 13 or "disk is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
