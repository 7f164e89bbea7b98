"""Is an instrument still writing a file? Asked once its size and mtime have been quiet.

A writer that pauses longer than ``settle_seconds`` makes a half-written file look finished.
Where the OS can say that a writer still holds the file open, the file is not taken until it
is closed (or has been quiet for ``open_file_wait_seconds``, for writers that never close):
  - Linux (inotify): a write or create without a later IN_CLOSE_WRITE (watchdog's "closed").
  - Windows: the file cannot be opened while denying other writers (a sharing violation).
  - polling (network shares) and elsewhere: unknown; settle time and the truncation check decide.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Protocol


class OpenWriters(Protocol):
    def note(self, event_type: str, path: Path, dest: Path | None = None) -> None:
        """A filesystem event for ``path`` (on the watcher's thread)."""

    def is_open(self, path: Path) -> bool:
        """True when a writer is known to still hold ``path`` open."""


class NoWriterInfo:
    """Polling, or a platform that cannot tell: never claims a writer."""

    def note(self, event_type: str, path: Path, dest: Path | None = None) -> None:
        return None

    def is_open(self, path: Path) -> bool:
        return False


class CloseEvents:
    """Linux: a write that grew or shrank the file opens a "writing" span; IN_CLOSE_WRITE ends it.

    watchdog reports content writes and attribute changes alike as "modified", and emits
    synthetic "created" events for files found in a new folder; a copy tool sets the mtime
    after closing (rsync, cp -p). Only a size change counts as a write here, so none of those
    holds a file back. Events for one path arrive in order, so a close is never missed after
    a write that was seen.
    """

    def __init__(self) -> None:
        self.writing: set[Path] = set()
        self.size: dict[Path, int] = {}

    def _size(self, path: Path) -> int | None:
        try:
            return os.stat(path).st_size
        except OSError:
            return None

    def note(self, event_type: str, path: Path, dest: Path | None = None) -> None:
        if event_type == "modified":
            now, before = self._size(path), self.size.get(path)
            if now is not None:
                if before is not None and now != before:
                    self.writing.add(path)
                self.size[path] = now
        elif event_type == "created":
            # a new file starts empty: the size is read when the event is handled, maybe after the
            # first writes, so any size seen at the next "modified" counts as written since
            self.writing.discard(path)
            self.size[path] = 0
        elif event_type == "closed":
            self.writing.discard(path)
            size = self._size(path)
            if size is not None:
                self.size[path] = size
        elif event_type in ("deleted", "moved"):
            for p in (path, dest):
                if p is not None:  # a file renamed into place is complete (the usual temp + rename)
                    self.writing.discard(p)
                    self.size.pop(p, None)

    def is_open(self, path: Path) -> bool:
        return path in self.writing


class ExclusiveOpen:  # pragma: no cover - Windows only; the decision logic is shared with the tests' fake
    """Windows: opening with FILE_SHARE_READ only fails with a sharing violation while a writer has it."""

    ERROR_SHARING_VIOLATION = 32

    def __init__(self) -> None:
        import ctypes
        from ctypes import wintypes

        self._k32 = ctypes.WinDLL("kernel32", use_last_error=True)
        self._k32.CreateFileW.restype = wintypes.HANDLE
        self._k32.CreateFileW.argtypes = [wintypes.LPCWSTR, wintypes.DWORD, wintypes.DWORD, wintypes.LPVOID,
                                          wintypes.DWORD, wintypes.DWORD, wintypes.HANDLE]
        self._ctypes = ctypes

    def note(self, event_type: str, path: Path, dest: Path | None = None) -> None:
        return None

    def is_open(self, path: Path) -> bool:
        GENERIC_READ, FILE_SHARE_READ, OPEN_EXISTING = 0x80000000, 0x1, 3
        handle = self._k32.CreateFileW(str(path), GENERIC_READ, FILE_SHARE_READ, None, OPEN_EXISTING, 0, None)
        if handle in (None, -1, self._ctypes.c_void_p(-1).value):
            return self._ctypes.get_last_error() == self.ERROR_SHARING_VIOLATION
        self._k32.CloseHandle(handle)
        return False


def open_writers(polling: bool) -> OpenWriters:
    if polling:
        return NoWriterInfo()
    if sys.platform.startswith("linux"):
        return CloseEvents()
    if sys.platform == "win32":  # pragma: no cover - Windows only
        return ExclusiveOpen()
    return NoWriterInfo()
