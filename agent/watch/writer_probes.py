"""Ask the OS whether any process holds a file open for writing: ``open_for_writing(path)``.

True: a writer holds it. False: none that this account can see. None: cannot tell (no such
facility here, the file is gone, or the look was cut short by its budget). Asked only when a
file is about to settle (agent.watch.settle), never per event:

  - Linux: ``/proc/<pid>/fd/*`` links whose name matches, confirmed by device and inode, then
    ``/proc/<pid>/fdinfo/<fd>`` ``flags`` for O_WRONLY/O_RDWR. The kernel shows another
    process's fds only to its own account (or CAP_SYS_PTRACE, which the service unit does not
    have): a writer running as another user is invisible here. One scan serves every file that
    settles within ``max_age`` s, and a scan stops after ``max_entries`` pids and fds.
  - Windows: opening the file for reading while sharing only reading fails with a sharing
    violation exactly while another handle has it open for writing (or denies readers).
  - elsewhere: None.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Protocol

#: O_ACCMODE bits in fdinfo's octal ``flags``: 1 = O_WRONLY, 2 = O_RDWR
_ACCMODE, _WRITE_MODES = 0o3, (0o1, 0o2)


class WriterProbe(Protocol):
    def open_for_writing(self, path: Path) -> bool | None: ...


class NoProbe:
    """A platform that cannot tell."""

    def open_for_writing(self, path: Path) -> bool | None:
        return None


class ProcFdProbe:
    """Linux: which processes (of those this account may inspect) have ``path`` open for writing."""

    def __init__(self, proc: Path = Path("/proc"), *, clock: Callable[[], float] = time.monotonic,
                 max_age: float = 1.0, max_entries: int = 200_000) -> None:
        self.proc = proc
        self.clock = clock
        self.max_age = max_age          # files settling in the same tick (or second) share one scan
        self.max_entries = max_entries  # a PC with a huge process table costs a bounded scan, then None
        self.scans = 0
        self._at = float("-inf")
        self._by_name: dict[str, list[tuple[str, str]]] | None = None
        self._complete = False

    def open_for_writing(self, path: Path) -> bool | None:
        try:
            want = os.stat(path)
        except OSError:
            return None
        by_name = self._links()
        if by_name is None:
            return None
        for pid, fd in by_name.get(path.name, ()):
            link = f"{self.proc}/{pid}/fd/{fd}"
            try:
                st = os.stat(link)  # follows the fd itself: same file whatever name it was opened by
            except OSError:
                continue  # closed since the scan
            if (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino) and _writes(f"{self.proc}/{pid}/fdinfo/{fd}"):
                return True
        return False if self._complete else None

    def _links(self) -> dict[str, list[tuple[str, str]]] | None:
        """{base name: [(pid, fd)]} of every file fd this account may see, at most ``max_age`` s old."""
        now = self.clock()
        if self._by_name is not None and now - self._at < self.max_age:
            return self._by_name
        try:
            pids = os.scandir(self.proc)
        except OSError:
            return None
        by_name: dict[str, list[tuple[str, str]]] = {}
        seen, complete = 0, True
        with pids:
            for entry in pids:
                if not entry.name.isdigit():
                    continue
                seen += 1
                if seen > self.max_entries:
                    complete = False
                    break
                try:
                    fds = os.scandir(f"{self.proc}/{entry.name}/fd")
                except OSError:
                    continue  # another account's process (EACCES), or it exited
                with fds:
                    for fd in fds:
                        seen += 1
                        try:
                            target = os.readlink(fd.path)  # no I/O on the target's file system
                        except OSError:
                            continue
                        if target.startswith("/"):  # not "pipe:[..]", "socket:[..]", "anon_inode:.."
                            by_name.setdefault(os.path.basename(target), []).append((entry.name, fd.name))
        self._by_name, self._at, self._complete = by_name, now, complete
        self.scans += 1
        return by_name


def _writes(fdinfo: str) -> bool:
    try:
        with open(fdinfo, encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags:"):
                    return int(line.split()[1], 8) & _ACCMODE in _WRITE_MODES
    except (OSError, ValueError, IndexError):
        pass
    return False


class ExclusiveOpenProbe:
    """Windows: CreateFileW(GENERIC_READ, FILE_SHARE_READ) fails with ERROR_SHARING_VIOLATION while
    another handle can write the file. Share mode 0 would also fail on mere readers (a virus
    scanner, the instrument's own viewer), so readers are shared with and writers are not.

    ``kernel32`` is anything with ``CreateFileW`` and ``CloseHandle``; ``last_error`` returns the
    thread's last Win32 error (ctypes.get_last_error). The tests pass a fake of both.
    """

    GENERIC_READ, FILE_SHARE_READ, OPEN_EXISTING = 0x80000000, 0x1, 3
    INVALID_HANDLE_VALUES = (None, -1, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF)
    ERROR_SHARING_VIOLATION = 32

    def __init__(self, kernel32: Any, last_error: Callable[[], int]) -> None:
        self.k32 = kernel32
        self.last_error = last_error

    def open_for_writing(self, path: Path) -> bool | None:
        handle = self.k32.CreateFileW(str(path), self.GENERIC_READ, self.FILE_SHARE_READ, None,
                                      self.OPEN_EXISTING, 0, None)
        if handle in self.INVALID_HANDLE_VALUES:
            # access denied, gone, a path too long...: none of them says whether a writer has it
            return True if self.last_error() == self.ERROR_SHARING_VIOLATION else None
        self.k32.CloseHandle(handle)
        return False


def _win32_probe() -> ExclusiveOpenProbe:  # pragma: no cover - Windows only
    import ctypes
    from ctypes import wintypes

    k32 = ctypes.WinDLL("kernel32", use_last_error=True)
    k32.CreateFileW.restype = wintypes.HANDLE
    k32.CreateFileW.argtypes = [wintypes.LPCWSTR, wintypes.DWORD, wintypes.DWORD, wintypes.LPVOID,
                                wintypes.DWORD, wintypes.DWORD, wintypes.HANDLE]
    k32.CloseHandle.argtypes = [wintypes.HANDLE]
    return ExclusiveOpenProbe(k32, ctypes.get_last_error)


def platform_probe(**linux: Any) -> WriterProbe:
    if sys.platform.startswith("linux") and os.path.isdir("/proc/self/fd"):
        return ProcFdProbe(**linux)
    if sys.platform == "win32":  # pragma: no cover - Windows only
        return _win32_probe()
    return NoProbe()


def open_for_writing(path: Path) -> bool | None:
    """One fresh look (no cached scan): does any process hold ``path`` open for writing?"""
    return platform_probe().open_for_writing(Path(path))
