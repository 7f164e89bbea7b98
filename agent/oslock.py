"""An exclusive, non-blocking OS lock on a file, released by the kernel when the process dies.

Why not a PID file: a crash leaves a PID file behind, and a PID is reused. The kernel drops
an flock (Linux, macOS) or a msvcrt byte-range lock (Windows) the moment the holder's last
handle closes, including on kill -9 or a power cut, so a stale lock cannot exist.

The lock covers byte 0 only; the holder writes who it is (JSON) from byte 1 on, which other
processes can read even on Windows, where a locked range is unreadable.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

INFO_OFFSET = 1


class LockHeld(Exception):
    """Another process holds the lock; ``holder`` is what it wrote about itself (may be {})."""

    def __init__(self, path: Path, holder: dict[str, Any]) -> None:
        super().__init__(f"{path} is locked by {holder or 'another process'}")
        self.path, self.holder = path, holder


if sys.platform == "win32":  # pragma: no cover - Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class FileLock:
    """``acquire()`` or raise LockHeld; ``release()``; ``FileLock.probe(path)`` asks without keeping it."""

    def __init__(self, path: Path, mode: int = 0o600) -> None:
        self.path, self.mode = Path(path), mode
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, info: dict[str, Any], wait: float = 2.0) -> None:
        """Take the lock, retrying for ``wait`` s (a `status` probe holds it for microseconds)."""
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
        writable = True
        try:
            fd = os.open(self.path, flags, self.mode)  # O_CLOEXEC by default: children never inherit it
        except PermissionError:
            if not self.path.is_file():
                raise
            # another user's lock file (a shared lock folder): a read-only handle still locks it,
            # so that user's agent and this one still exclude each other; we just cannot sign it
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0))
            writable = False
        if writable and sys.platform != "win32":
            try:
                os.fchmod(fd, self.mode)  # the umask (a service's 0077) must not hide the holder from others
            except OSError:
                pass
        deadline = time.monotonic() + wait
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                holder = read_holder(self.path)
                os.close(fd)
                raise LockHeld(self.path, holder)
            time.sleep(0.05)
        if not writable:
            self._fd = fd
            return
        try:
            data = json.dumps(info, ensure_ascii=False).encode("utf-8")
            os.ftruncate(fd, INFO_OFFSET)
            os.lseek(fd, INFO_OFFSET, os.SEEK_SET)
            os.write(fd, data)
            os.fsync(fd)
        except OSError:
            pass  # who holds it is a courtesy for messages; the lock itself is what counts
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, INFO_OFFSET)  # no stale "who" left for readers
        except OSError:
            pass  # a read-only handle (another user's file)
        try:
            _unlock(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    @staticmethod
    def probe(path: Path) -> tuple[bool | None, dict[str, Any]]:
        """(held by someone, holder info); None when this user cannot tell (no access to the file).

        Never creates the file; takes the lock for an instant when it is free.
        """
        try:
            fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return False, {}
        except OSError:
            return None, {}
        try:
            if _try_lock(fd):
                _unlock(fd)
                return False, {}
            return True, read_holder(path)
        finally:
            os.close(fd)


def read_holder(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            fh.seek(INFO_OFFSET)
            data = json.loads(fh.read(65536).decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
