"""Who may read what in machine-wide mode, behind one small interface per OS.

Private (the service account and administrators only): the state DB folder, the spool, the device
key. Readable by every local user: the base folder and its status.json (what the tray shows).
POSIX does it with owners and modes (0700/0600/0755/0644); Windows with ACLs set through
``icacls`` on well-known SIDs (so a localised Windows, where "Administrators" has another name,
works too). The Windows class only builds and runs commands, so Linux tests check the commands.
"""
from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Callable, Protocol, Sequence

log = logging.getLogger(__name__)

SYSTEM_SID, ADMINS_SID, USERS_SID = "*S-1-5-18", "*S-1-5-32-544", "*S-1-5-32-545"


class PermissionsError(Exception):
    """A folder or file could not be given its owner or access rights; the message names it."""


class Permissions(Protocol):
    def private_dir(self, path: Path) -> None: ...
    def private_file(self, path: Path) -> None: ...
    def readable_dir(self, path: Path) -> None: ...
    def readable_file(self, path: Path) -> None: ...


class PosixPermissions:
    """Modes, and the owner when we run as root (at install); the service itself only tightens modes."""

    def __init__(self, owner: str | None = None) -> None:
        self.owner = owner

    def _ids(self) -> tuple[int, int] | None:
        if self.owner is None or os.geteuid() != 0:
            return None
        import pwd

        try:
            pw = pwd.getpwnam(self.owner)
        except KeyError:
            raise PermissionsError(f"account {self.owner!r} does not exist") from None
        return pw.pw_uid, pw.pw_gid

    def _apply(self, path: Path, mode: int) -> None:
        try:
            ids = self._ids()
            if ids is not None:
                os.chown(path, *ids)
            os.chmod(path, mode)
        except OSError as exc:
            raise PermissionsError(f"{path}: cannot set owner/mode {mode:o}: {exc.strerror}") from None

    def _dir(self, path: Path, mode: int) -> None:
        try:
            path.mkdir(mode=mode, parents=True, exist_ok=True)
        except OSError as exc:
            raise PermissionsError(f"{path}: cannot create folder: {exc.strerror}") from None
        self._apply(path, mode)

    def private_dir(self, path: Path) -> None:
        self._dir(path, 0o700)

    def private_file(self, path: Path) -> None:
        self._apply(path, 0o600)

    def readable_dir(self, path: Path) -> None:
        self._dir(path, 0o755)

    def readable_file(self, path: Path) -> None:
        self._apply(path, 0o644)


Runner = Callable[[Sequence[str]], None]


def _run(argv: Sequence[str]) -> None:  # pragma: no cover - Windows only
    res = subprocess.run(list(argv), capture_output=True, text=True)
    if res.returncode != 0:
        raise PermissionsError(f"{' '.join(argv)} failed: {(res.stderr or res.stdout).strip()}")


class WindowsAcl:
    """ACLs for a service running as LocalSystem (WinSW's default): SYSTEM and Administrators own
    everything; Users may read (and list) only what `readable_*` marks. Inheritance is cut on the
    private folders, so the base folder's read grant for Users never reaches them."""

    def __init__(self, run: Runner = _run, account_sid: str = SYSTEM_SID) -> None:
        self.run = run
        self.account = account_sid

    def _owners(self, inherit: bool) -> list[str]:
        flags = "(OI)(CI)F" if inherit else "F"
        return [f"{sid}:{flags}" for sid in dict.fromkeys([self.account, SYSTEM_SID, ADMINS_SID])]

    def private_dir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.run(["icacls", str(path), "/inheritance:r", "/grant:r", *self._owners(True)])

    def private_file(self, path: Path) -> None:
        self.run(["icacls", str(path), "/inheritance:r", "/grant:r", *self._owners(False)])

    def readable_dir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.run(["icacls", str(path), "/inheritance:r", "/grant:r", *self._owners(True), f"{USERS_SID}:(OI)(CI)RX"])

    def readable_file(self, path: Path) -> None:
        self.run(["icacls", str(path), "/inheritance:r", "/grant:r", *self._owners(False), f"{USERS_SID}:R"])


def for_this_os(owner: str | None = None) -> Permissions:
    return WindowsAcl() if sys.platform == "win32" else PosixPermissions(owner)


def too_open(path: Path) -> bool:
    """True when a POSIX file or folder can be read by its group or by others (never on Windows,
    where modes say nothing: the ACL set at install is what counts)."""
    if sys.platform == "win32":
        return False
    return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))
