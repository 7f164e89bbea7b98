"""Keep what the agent writes readable by its own account only.

Instrument PCs are shared by every lab account. The spool holds other users' measurements, the
state DB their sample sheets, the logs their file names. So the agent's process umask is 077 (every file
created is 0600, every directory 0700), and the top-level directories are forced to 0700 at start
even when an older version or an installer created them 0755: a 0700 parent alone keeps every
other local account out of everything below it. On Windows the same directories get an ACL that
grants only SYSTEM, Administrators and the account the agent runs as (no inheritance from the
parent, which usually lets every user read).
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterable

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600


class PrivacyError(OSError):
    """A directory could not be made private; names it."""


def apply_private_umask() -> None:
    """Every file and directory this process creates from now on is private (POSIX)."""
    if sys.platform != "win32":
        os.umask(PRIVATE_UMASK)


def windows_acl_command(path: Path, account: str) -> list[str]:
    """The icacls call that leaves ``path`` to SYSTEM, Administrators and ``account`` only."""
    grant = "(OI)(CI)F"
    return ["icacls", str(path), "/inheritance:r", "/grant:r", f"*S-1-5-18:{grant}", "/grant:r",
            f"*S-1-5-32-544:{grant}", "/grant:r", f"{account}:{grant}"]


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it owner-only."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    if sys.platform == "win32":  # pragma: no cover - exercised on the Windows build
        account = os.environ.get("USERNAME", "")
        res = subprocess.run(windows_acl_command(path, account), capture_output=True, text=True)
        if res.returncode != 0:
            raise PrivacyError(f"{path}: cannot restrict access ({res.stderr.strip() or res.stdout.strip()})")
        return path
    st = path.lstat()
    if st.st_uid != os.geteuid():
        raise PrivacyError(f"{path}: owned by uid {st.st_uid}, not by the account running labedge")
    if st.st_mode & 0o777 != DIR_MODE:
        os.chmod(path, DIR_MODE)
        log.info("made %s private (was %o)", path, st.st_mode & 0o777)
    return path


def make_private_files(paths: Iterable[Path]) -> None:
    """chmod 0600 existing files (state DB and its WAL, old logs) left readable by an older version."""
    if sys.platform == "win32":  # pragma: no cover - the directory ACL covers them
        return
    for p in paths:
        try:
            st = p.lstat()
        except FileNotFoundError:
            continue
        if p.is_file() and not p.is_symlink() and st.st_uid == os.geteuid() and st.st_mode & 0o777 != FILE_MODE:
            os.chmod(p, FILE_MODE)


def secure_agent_dirs(spool_dir: Path, state_dir: Path, log_dir: Path) -> None:
    """Called once at agent start, before anything is written. The umask itself is set by `labedge run`
    (agent.cli), not here: an Agent built inside another process (tests, the demo) must not change that
    process's umask, and `labedge service install` must still write files the service account reads.
    A 0700 top folder alone already keeps every other account out of everything below it."""
    from config.validation import ConfigError

    for d in (spool_dir, state_dir, log_dir):
        try:
            make_private_dir(d)
        except OSError as exc:  # one line for the user (agent.cli prints ConfigError), not a traceback
            raise ConfigError(str(exc)) from None
    make_private_files([*state_dir.glob("state.sqlite3*"), *log_dir.glob("labedge.log*")])
