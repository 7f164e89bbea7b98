"""Decide when a file has stopped changing: size and mtime quiet for ``settle_seconds``, and openable."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Callable


@dataclass
class Pending:
    size: int = -1
    mtime_ns: int = -1
    stable_since: float = 0.0
    unreadable_since: float | None = None


@dataclass(frozen=True)
class Settled:
    path: Path
    size: int
    mtime_ns: int


class SettleTracker:
    """Tracks candidate files; ``poll`` returns those that have settled since the last call.

    ``problems`` maps paths to a message for files that stay unreadable past the settle time.
    """

    def __init__(self, settle_seconds: float, clock=time.monotonic, *, empty_seconds: float = 0.0,
                 open_wait_seconds: float = 0.0, is_open: Callable[[Path], bool] | None = None,
                 may_be_empty: Callable[[Path], bool] | None = None) -> None:
        self.settle_seconds = settle_seconds
        self.clock = clock
        # an empty file is not a measurement until it has content or stayed empty this long
        self.empty_seconds = empty_seconds
        # a file a writer still holds open waits for the close, at most this long (agent.watch.writers)
        self.open_wait_seconds = open_wait_seconds
        self.is_open = is_open or (lambda _path: False)
        self.may_be_empty = may_be_empty or (lambda _path: False)  # e.g. a group's "*.done" marker
        self.pending: dict[Path, Pending] = {}
        self.problems: dict[Path, str] = {}

    def add(self, path: Path) -> None:
        if path not in self.pending:
            self.pending[path] = Pending(stable_since=self.clock())

    def discard(self, path: Path) -> None:
        self.pending.pop(path, None)
        self.problems.pop(path, None)

    def __contains__(self, path: Path) -> bool:
        return path in self.pending

    def __len__(self) -> int:
        return len(self.pending)

    def poll(self) -> tuple[list[Settled], list[Path]]:
        """Returns (settled files, vanished files)."""
        now = self.clock()
        settled, vanished = [], []
        for path, p in list(self.pending.items()):
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                vanished.append(path)
                self.discard(path)
                continue
            except OSError as exc:
                self.problems[path] = f"{path}: cannot be examined ({exc.strerror})"
                continue
            if not S_ISREG(st.st_mode):  # replaced by a symlink, FIFO or folder since it was seen
                vanished.append(path)
                self.discard(path)
                continue
            if st.st_size != p.size or st.st_mtime_ns != p.mtime_ns:
                p.size, p.mtime_ns, p.stable_since = st.st_size, st.st_mtime_ns, now
                continue
            quiet = now - p.stable_since
            if quiet < self.settle_seconds:
                continue
            if st.st_size == 0 and quiet < self.empty_seconds and not self.may_be_empty(path):
                continue  # instruments create the file, then write it
            if quiet < self.open_wait_seconds and self.is_open(path):
                continue  # its writer paused but has not closed it
            if not _openable(path):
                # On Windows the writer's share mode blocks readers until it is done; elsewhere
                # it is a permission problem the user must hear about.
                if p.unreadable_since is None:
                    p.unreadable_since = now
                self.problems[path] = f"{path}: cannot be opened for reading (permissions, or still locked by the instrument software)"
                continue
            self.problems.pop(path, None)
            del self.pending[path]
            settled.append(Settled(path, st.st_size, st.st_mtime_ns))
        return settled, vanished


#: Never follow a symlink swapped in after the lstat, never block on a FIFO (POSIX).
OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def _openable(path: Path) -> bool:
    try:
        os.close(os.open(path, OPEN_FLAGS))
        return True
    except OSError:
        return False
