"""The status file: `labedge status` as JSON, for readers who may not open the state DB.

In machine-wide mode the state DB and the key are private to the service account; the tray in
every user's session (and `labedge status --system` run by any user) reads this file instead. The
agent rewrites it every couple of seconds, atomically (temp file + rename, so a reader never sees
half a file), mode 0644 on POSIX; on Windows it inherits the base folder's read grant for Users.
A reader treats a file older than ``STALE_SECONDS`` as "the agent is not running".
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from agent.config import Config
from agent.threads import Worker

log = logging.getLogger(__name__)

STALE_SECONDS = 15.0
FORMAT = 1


class StatusFileError(Exception):
    """The status file is missing or unreadable; the message says which and why."""


def write_status_file(path: Path, status: dict[str, Any]) -> None:
    body = json.dumps({"format": FORMAT, "written_at": time.time(), "status": status},
                      ensure_ascii=False, default=str).encode("utf-8")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o644)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o644)  # the umask may have narrowed it; every local user must read it
        os.write(fd, body)
    finally:
        os.close(fd)
    for attempt in range(5):
        try:
            os.replace(tmp, path)
            return
        except PermissionError:
            # Windows refuses to replace a file a reader (the tray) has open at this instant
            if attempt == 4:
                tmp.unlink(missing_ok=True)
                raise
            time.sleep(0.05)


def read_status_file(path: Path, now: float | None = None) -> dict[str, Any]:
    """The agent's status as `build_status` returns it; stale or stopped shows as not running."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StatusFileError(f"{path}: no status file (the service has never run with this machine's config)") from None
    except PermissionError:
        raise StatusFileError(f"{path}: not readable by this user") from None
    except (OSError, ValueError) as exc:
        raise StatusFileError(f"{path}: unreadable: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("status"), dict):
        raise StatusFileError(f"{path}: not a labedge status file (format {FORMAT})")
    st = doc["status"]
    age = (now or time.time()) - float(doc.get("written_at", 0))
    agent = st.setdefault("agent", {})
    if agent.get("running") and age > STALE_SECONDS:
        agent.update(running=False, heartbeat_age_seconds=round(age, 1),
                     note=f"the status file was last written {age:.0f} s ago")
    st["status_file"] = {"path": str(path), "age_seconds": round(age, 1)}
    return st


class StatusFileWriter(Worker):
    """Writes `build_status(cfg)` to ``path`` every ``interval`` seconds, and a final
    "not running" on stop, so the tray does not wait for the file to go stale."""

    def __init__(self, cfg: Config, path: Path, interval: float = 2.0) -> None:
        super().__init__("status-file")
        self.cfg, self.path, self.interval = cfg, path, interval
        self._last_error: str | None = None

    def _write(self, running: bool | None = None) -> None:
        from agent.status import build_status

        try:
            st = build_status(self.cfg)
            if running is False:
                st["agent"] = {**st.get("agent", {}), "running": False, "note": "the service stopped"}
            write_status_file(self.path, st)
        except Exception as exc:  # noqa: BLE001 - a full disk or a locked DB must not stop the agent
            if str(exc) != self._last_error:
                log.warning("cannot write the status file %s (%s); retrying", self.path, exc)
                self._last_error = str(exc)
        else:
            self._last_error = None

    def loop_once(self) -> None:
        self._write()
        self.wait(self.interval)

    def run(self) -> None:
        super().run()
        self._write(running=False)
