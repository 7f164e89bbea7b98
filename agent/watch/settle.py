"""Decide when a file has stopped changing: size and mtime quiet for ``settle_seconds``, no writer
still holding it open (at most ``open_wait_seconds``), and openable."""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Callable

log = logging.getLogger(__name__)

@dataclass
class Pending:
    size: int = -1
    mtime_ns: int = -1
    stable_since: float = 0.0
    unreadable_since: float | None = None
    open_wait_over: bool = False  # taken although a writer holds it: said once, not asked again


@dataclass(frozen=True)
class Settled:
    path: Path
    size: int
    mtime_ns: int


class SettleTracker:
    """Tracks candidate files; ``poll`` returns those that have settled since the last call.

    ``problems`` maps paths to a message for files that stay unreadable past the settle time;
    ``waiting`` to one for files whose writer still holds them open; ``on_taken_open`` hears of a
    file taken although its writer never closed it (``open_wait_seconds`` passed).
    """

    def __init__(self, settle_seconds: float, clock=time.monotonic, *, empty_seconds: float = 0.0,
                 open_wait_seconds: float = 0.0, is_open: Callable[[Path], bool | None] | None = None,
                 may_be_empty: Callable[[Path], bool] | None = None,
                 on_taken_open: Callable[[Path, float], None] | None = None) -> None:
        self.settle_seconds = settle_seconds
        self.clock = clock
        # an empty file is not a measurement until it has content or stayed empty this long
        self.empty_seconds = empty_seconds
        # a file a writer still holds open waits for the close, at most this long (agent.watch.writers)
        self.open_wait_seconds = open_wait_seconds
        self.is_open = is_open or (lambda _path: None)
        self.on_taken_open = on_taken_open or (lambda _path, _quiet: None)
        self.may_be_empty = may_be_empty or (lambda _path: False)  # e.g. a group's "*.done" marker
        self.pending: dict[Path, Pending] = {}
        self.problems: dict[Path, str] = {}
        self.waiting: dict[Path, str] = {}

    def add(self, path: Path) -> None:
        if path not in self.pending:
            self.pending[path] = Pending(stable_since=self.clock())

    def discard(self, path: Path) -> None:
        self.pending.pop(path, None)
        self.problems.pop(path, None)
        self.waiting.pop(path, None)

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
                p.open_wait_over = False  # written again: a new quiet period, a new wait for the close
                continue
            quiet = now - p.stable_since
            if quiet < self.settle_seconds:
                continue
            if st.st_size == 0 and quiet < self.empty_seconds and not self.may_be_empty(path):
                continue  # instruments create the file, then write it
            if self._writer_holds(path, p, quiet):
                continue  # its writer paused but has not closed it: asked again next tick
            if not _openable(path):
                # On Windows the writer's share mode blocks readers until it is done; elsewhere
                # it is a permission problem the user must hear about.
                if p.unreadable_since is None:
                    p.unreadable_since = now
                self.problems[path] = f"{path}: cannot be opened for reading (permissions, or still locked by the instrument software)"
                continue
            self.problems.pop(path, None)
            self.waiting.pop(path, None)
            del self.pending[path]
            settled.append(Settled(path, st.st_size, st.st_mtime_ns))
        return settled, vanished

    def _writer_holds(self, path: Path, p: Pending, quiet: float) -> bool:
        """True while ``path`` must wait for its writer to close it (asked only once it is quiet)."""
        if self.open_wait_seconds <= 0 or p.open_wait_over or not self.is_open(path):
            self.waiting.pop(path, None)
            return False
        if quiet < self.open_wait_seconds:
            if path not in self.waiting:
                self.waiting[path] = (f"{path}: waiting for the instrument to close it (still open for writing; "
                                      f"taken anyway after {self.open_wait_seconds:.0f} s without a change)")
                log.info("%s", self.waiting[path])
            return True
        self.waiting.pop(path, None)
        p.open_wait_over = True
        self.on_taken_open(path, quiet)
        return False


#: Never follow a symlink swapped in after the lstat, never block on a FIFO (POSIX).
OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def _openable(path: Path) -> bool:
    try:
        os.close(os.open(path, OPEN_FLAGS))
        return True
    except OSError:
        return False
