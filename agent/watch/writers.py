"""Is an instrument still writing a file? Asked once its size and mtime have been quiet.

A writer that pauses longer than ``settle_seconds`` makes a half-written file look finished.
Where the OS can say that a writer still holds the file open, the file is not taken until it
is closed (or has been quiet for ``open_file_wait_seconds``, for writers that never close):
  - Linux (inotify): a write without a later IN_CLOSE_WRITE (watchdog's "closed") says so at no
    cost. A file whose whole life the watch did not see (it was there, or opened, before the
    watch was live) is asked about in /proc (agent.watch.writer_probes).
  - Windows: the file cannot be opened while denying other writers (a sharing violation).
  - Linux polling roots: /proc sees this PC's writers only; elsewhere: unknown. Settle time
    and the truncation check decide.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Protocol

from agent.watch.writer_probes import NoProbe, WriterProbe, platform_probe


class OpenWriters(Protocol):
    def note(self, event_type: str, path: Path, dest: Path | None = None) -> None:
        """A filesystem event for ``path`` (on the watcher's thread)."""

    def is_open(self, path: Path) -> bool | None:
        """True when a writer still holds ``path`` open, False when none does, None: cannot tell."""

    def forget(self, path: Path) -> None:
        """``path`` was taken (or vanished): drop what is remembered of it."""


class ProbeOnly:
    """No events to learn from (polling roots, Windows): ask the OS's probe at settle time."""

    def __init__(self, probe: WriterProbe) -> None:
        self.probe = probe

    def note(self, event_type: str, path: Path, dest: Path | None = None) -> None:
        return None

    def is_open(self, path: Path) -> bool | None:
        return self.probe.open_for_writing(path)

    def forget(self, path: Path) -> None:
        return None


class CloseEvents:
    """Linux: a write that grew or shrank the file opens a "writing" span; IN_CLOSE_WRITE ends it.

    watchdog reports content writes and attribute changes alike as "modified", and emits
    synthetic "created" events for files found in a new folder; a copy tool sets the mtime
    after closing (rsync, cp -p). Only a size change counts as a write here, so none of those
    holds a file back. Events for one path arrive in order, so a close is never missed after
    a write that was seen.

    The events tell the whole story only of a file created (or renamed into place) under the
    live watch. Any other file, e.g. one the instrument opened while the agent was starting,
    may have a writer that has not written since: that one is asked about through ``probe``.
    """

    def __init__(self, probe: WriterProbe | None = None) -> None:
        self.probe = probe or NoProbe()
        self.writing: set[Path] = set()
        self.size: dict[Path, int] = {}
        self.whole_life: set[Path] = set()  # created or renamed into place under the watch

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
            self.whole_life.add(path)
        elif event_type == "closed":
            self.writing.discard(path)
            size = self._size(path)
            if size is not None:
                self.size[path] = size
        elif event_type in ("deleted", "moved"):
            self.forget(path)
            if dest is not None:  # a file renamed into place is complete (the usual temp + rename)
                self.forget(dest)
                if event_type == "moved":
                    self.whole_life.add(dest)

    def is_open(self, path: Path) -> bool | None:
        if path in self.writing:
            return True
        if path in self.whole_life:
            return False  # every write since it was created was followed by its close
        return self.probe.open_for_writing(path)

    def forget(self, path: Path) -> None:
        # bounded memory over months of files; a later write to a taken file is seen afresh, and
        # the probe covers a writer that does not write again before it settles
        self.writing.discard(path)
        self.size.pop(path, None)
        self.whole_life.discard(path)


def open_writers(polling: bool, probe: WriterProbe | None = None) -> OpenWriters:
    """``probe``: one per watcher, so files settling in the same tick share one /proc scan."""
    probe = probe or platform_probe()
    if sys.platform.startswith("linux") and not polling:
        return CloseEvents(probe)
    return ProbeOnly(probe)  # Windows (share modes hold on SMB shares too), Linux polling, or NoProbe
