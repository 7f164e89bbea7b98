"""Machine-wide mode: the folders a service uses, shared by the service and every user's tray.

Per-user mode (platformdirs' user folders) is for trying labedge by hand. The services run in
machine-wide mode (`labedge run --system`, or `mode = "system"` in the config):

- Windows: ``%ProgramData%\\labedge\\{config,state,spool,log}`` and ``status.json``;
- Linux: ``/etc/labedge`` (config, device key), ``/var/lib/labedge/{state,spool}`` and
  ``status.json``, ``/var/log/labedge``.

The state DB, the spool and the key are private to the service account (and administrators); the
status file is the one thing every local user may read, so the tray in any session shows the
service's state without reading the DB or the key. ``LABEDGE_SYSTEM_ROOT`` moves the whole tree
under another folder (it stands in for ``/`` on Linux and for ``%ProgramData%`` on Windows), for
tests and for unusual installs.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.config import Config
    from agent.permissions import Permissions

ENV_ROOT = "LABEDGE_SYSTEM_ROOT"
STATUS_NAME = "status.json"


@dataclass(frozen=True)
class SystemPaths:
    config_dir: Path
    base_dir: Path     # readable by local users: holds status.json and the private state and spool
    state_dir: Path
    spool_dir: Path
    log_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "labedge.toml"

    @property
    def pki_dir(self) -> Path:
        """Where the device key and certificate go (`labedge enroll --out` this folder)."""
        return self.config_dir / "pki"

    @property
    def status_file(self) -> Path:
        return self.base_dir / STATUS_NAME

    def private_dirs(self) -> tuple[Path, ...]:
        return (self.state_dir, self.spool_dir, self.pki_dir)

    def writable_dirs(self) -> tuple[Path, ...]:
        """What the service writes (systemd's ReadWritePaths): everything else may be read-only."""
        return (self.base_dir, self.log_dir)


def system_paths(platform: str | None = None) -> SystemPaths:
    platform = platform or sys.platform
    override = os.environ.get(ENV_ROOT)
    if platform == "win32":
        base = Path(override or os.environ.get("ProgramData") or r"C:\ProgramData") / "labedge"
        return SystemPaths(config_dir=base / "config", base_dir=base, state_dir=base / "state",
                           spool_dir=base / "spool", log_dir=base / "log")
    root = Path(override or "/")
    base = root / "var" / "lib" / "labedge"
    return SystemPaths(config_dir=root / "etc" / "labedge", base_dir=base, state_dir=base / "state",
                       spool_dir=base / "spool", log_dir=root / "var" / "log" / "labedge")


def prepare_service_dirs(cfg: Config, perms: Permissions, *, key_files: tuple[Path, ...] = (),
                         installing: bool = False) -> list[str]:
    """Create the machine-wide folders with their access rights; return warnings for the log.

    Run by `service install` (as root/Administrator: sets owners, secures the key) and by the agent
    at start in system mode (as the service account: creates what is missing, tightens modes, and
    only *checks* the key, which lives on a read-only /etc under the systemd unit)."""
    from agent.permissions import PermissionsError, too_open

    owner = None if installing else _foreign_owner(cfg.state_dir)
    if owner is not None:
        # root writing into the service's DB would leave files the service cannot open again
        raise PermissionsError(f"{cfg.state_dir} belongs to the service account {owner!r}: run the agent as that "
                               f"account (sudo -u {owner} labedge run --system) or through the service")
    if cfg.status_file is not None:
        perms.readable_dir(cfg.status_file.parent)
    for d in (cfg.state_dir, cfg.spool_dir, cfg.log_dir):  # logs name files and samples: admins only
        perms.private_dir(d)
    for key in key_files:
        if key.exists():
            perms.private_file(key)
            if key.parent.name == "pki":
                perms.private_dir(key.parent)
    warnings = []
    if cfg.upload is not None and cfg.upload.key_file.exists() and too_open(cfg.upload.key_file):
        warnings.append(f"{cfg.upload.key_file}: the device key is readable by other accounts; "
                        "run `labedge service install` again (as root) or chmod 600 it")
    return warnings


def _foreign_owner(state_dir: Path) -> str | None:
    """The account owning an existing state folder when it is not us (POSIX), else None."""
    if os.name != "posix" or not state_dir.exists():
        return None
    uid = state_dir.stat().st_uid
    if uid == os.geteuid():
        return None
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
