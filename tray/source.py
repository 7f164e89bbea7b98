"""Where the tray gets the agent's status from.

Per-user mode: the tray's user runs the agent too, so it reads the state DB (`build_status`).
Machine-wide mode: the agent is a service whose state DB and key are private to the service
account; the tray in any user's session reads the service's status file (agent/status_file.py),
which every local user may read, and never opens the DB or the key.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from agent.config import Config


class StatusSource(Protocol):
    def status(self) -> dict[str, Any]: ...


class DatabaseStatus:
    """Per-user mode: `labedge status` straight from the state DB."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def status(self) -> dict[str, Any]:
        from agent.status import build_status

        return build_status(self.cfg)


class ServiceStatusFile:
    """Machine-wide mode: the status the service publishes; a missing, unreadable or stale file
    shows as "the agent is not running" with the reason, so the tray always has something to say."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def status(self) -> dict[str, Any]:
        from agent.status_file import StatusFileError, read_status_file

        try:
            return read_status_file(self.path)
        except StatusFileError as exc:
            return {"agent": {"running": False, "note": str(exc)}, "packages": {}, "problems": [],
                    "status_file": {"path": str(self.path), "error": str(exc)}}


def source_for(cfg: Config | None, *, system: bool = False) -> StatusSource:
    """The service's status file in machine-wide mode (by flag or by the config's mode), else the DB."""
    if system or (cfg is not None and cfg.mode == "system"):
        if cfg is not None and cfg.status_file is not None:
            return ServiceStatusFile(cfg.status_file)
        from agent.machine import system_paths

        return ServiceStatusFile(system_paths().status_file)
    if cfg is None:
        raise ValueError("per-user mode needs the config")
    return DatabaseStatus(cfg)
