"""One instrument's watcher: events + periodic rescans -> settle -> group -> emit measurements.

The watchdog handler only enqueues paths. This thread owns all watcher state, so the only
cross-thread entry points are ``mark_known``/``retake`` (called by the pipeline) under a lock.
"""
from __future__ import annotations

import logging
import os
import queue
import stat as statmod
import threading
import time
from pathlib import Path
from typing import Callable

from agent.config import InstrumentConfig
from agent.health import Health
from agent.measurement import Measurement
from agent.threads import Worker
from agent.watch.filters import FileFilter
from agent.watch.grouping import Grouper
from agent.watch.observer import EnqueueHandler, make_observer
from agent.watch.scanner import WatchRootUnavailable, scan_tree
from agent.watch.settle import SettleTracker
from agent.package.safe_names import path_text
from agent.watch.writer_probes import platform_probe
from agent.watch.writers import OpenWriters, open_writers

log = logging.getLogger(__name__)


def stat_is_dir(st) -> bool:  # noqa: ANN001
    return statmod.S_ISDIR(st.st_mode)


class InstrumentWatcher(Worker):
    def __init__(self, inst: InstrumentConfig, *, known: dict[str, tuple[int, int]],
                 emit: Callable[[Measurement], None], health: Health, rescan_seconds: float = 60.0,
                 on_sheet: Callable[[str, Path], None] | None = None) -> None:
        super().__init__(f"watch-{inst.id}")
        self.inst = inst
        self.emit = emit
        self.on_sheet = on_sheet
        self.health = health
        self.rescan_seconds = rescan_seconds
        self.filter = FileFilter(inst.include, inst.all_excludes, inst.marker)
        self.roots = [Path(r) for r in inst.watch]
        self.events: "queue.SimpleQueue" = queue.SimpleQueue()  # Path, or (kind, path, dest)
        self.writers: dict[Path, OpenWriters] = {}   # per root: only event-driven roots can see closes
        self.probe = platform_probe()  # one for all roots: files settling together share one /proc scan
        self.tracker = SettleTracker(inst.settle_seconds, empty_seconds=inst.empty_file_seconds,
                                     open_wait_seconds=inst.open_file_wait_seconds, is_open=self._writer_has_open,
                                     may_be_empty=self.filter.is_marker, on_taken_open=self._taken_open)
        self.groupers = {r: Grouper(inst.id, r, inst.group, inst.group_quiet_seconds) for r in self.roots}
        self._lock = threading.Lock()
        self._known = known
        self._in_flight: set[Path] = set()
        self._observers: dict[Path, object] = {}
        self.tick = max(0.05, min(inst.settle_seconds / 4, 0.5))
        self.scans_done = 0
        self._rescan_asked = False
        self._waiting_shown: dict[str, str] = {}

    # -- called from the pipeline thread -----------------------------------------------------
    def mark_known(self, entries: list[tuple[str, int, int]]) -> None:
        with self._lock:
            for path, size, mtime_ns in entries:
                self._known[path] = (size, mtime_ns)
                self._in_flight.discard(Path(path))

    def retake(self, paths: list[Path]) -> None:
        """A build failed for reasons of the source (changed, vanished): watch these again."""
        with self._lock:
            for p in paths:
                self._in_flight.discard(p)
        for p in paths:
            self.events.put(p)

    def wake(self) -> None:
        self.events.put(Path())

    def rescan_now(self) -> None:
        """A rescan at the next tick (the `rescan` remote command), not at the next period."""
        self._rescan_asked = True
        self.wake()

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._start_observers()
            self._rescan(initial=True)
            next_rescan = time.monotonic() + self.rescan_seconds
            while not self.stopping:
                self._drain_events()
                self._advance()
                if time.monotonic() >= next_rescan or self._rescan_asked:
                    self._rescan_asked = False
                    self._start_observers()
                    self._rescan()
                    next_rescan = time.monotonic() + self.rescan_seconds
        except Exception:
            log.exception("watcher for %s crashed", self.inst.id)
            self.health.problem(f"watch:{self.inst.id}:crash", f"watcher for {self.inst.id} stopped after an "
                                "internal error; see the log", kind="error")
            raise
        finally:
            for obs in self._observers.values():
                obs.stop()
            for obs in self._observers.values():
                obs.join(5)

    def _start_observers(self) -> None:
        for root in self.roots:
            if root in self._observers:
                continue
            obs, polling = make_observer(root, self.inst.polling, self.inst.poll_seconds)
            try:
                obs.schedule(EnqueueHandler(self.events), str(root), recursive=self.inst.recursive)
                obs.start()
            except OSError as exc:
                self.health.problem(f"watch:{self.inst.id}:{root}", f"{root}: cannot watch this folder "
                                    f"({exc.strerror or exc}); retrying every {self.rescan_seconds:.0f} s")
                continue
            self._observers[root] = obs
            self.writers[root] = open_writers(polling, self.probe)
            log.info("watching %s for %s (%s)", root, self.inst.id, "polling" if polling else "events")

    def _drain_events(self) -> None:
        try:
            item = self.events.get(timeout=self.tick)
        except queue.Empty:
            return
        self._event(item)
        while True:
            try:
                self._event(self.events.get_nowait())
            except queue.Empty:
                return

    def _event(self, item: "Path | tuple[str, Path, Path | None]") -> None:
        """A path (rescans, retakes) or an observer's (kind, path, dest)."""
        if isinstance(item, Path):
            self._consider(item)
            return
        kind, path, dest = item
        root = self._root_of(path)
        if root is not None and root in self.writers:
            self.writers[root].note(kind, path, dest)
        self._consider(path)
        if dest is not None:
            self._consider(dest)

    def _writer_has_open(self, path: Path) -> bool | None:
        root = self._root_of(path)
        if root is None or root not in self.writers:
            return self.probe.open_for_writing(path)  # its folder could not be watched (yet)
        return self.writers[root].is_open(path)

    def _taken_open(self, path: Path, quiet: float) -> None:
        msg = (f"{path}: taken although the instrument still has it open for writing (no change for "
               f"{quiet:.0f} s, open_file_wait_seconds); anything it writes later becomes a new version")
        log.warning("%s", msg)
        self.health.problem(f"writer:{self.inst.id}:{path}", msg, kind="warning", ttl=3600)

    def _forget(self, path: Path) -> None:
        root = self._root_of(path)
        if root is not None and root in self.writers:
            self.writers[root].forget(path)

    def _root_of(self, path: Path) -> Path | None:
        for root in self.roots:
            if path == root or root in path.parents:
                return root
        return None

    def _consider(self, path: Path) -> None:
        """A path from an event: find out what it is, then treat it like a scanned file."""
        if not path.name:
            return
        root = self._root_of(path)
        if root is None or path == root:
            return
        if not self.inst.recursive and path.parent != root:
            return
        try:
            st = os.lstat(path)  # lstat: a symlink is never followed out of the watched tree
        except OSError:
            return  # gone again (a temp file) or unreadable: the rescan will report it
        if stat_is_dir(st):
            # a folder moved in arrives as one event: its files need a look of their own
            if self.inst.recursive:
                for p, size, mtime in scan_tree(path, self.filter, on_error=self._scan_error):
                    self._consider_file(root, p, (size, mtime))
            return
        if not statmod.S_ISREG(st.st_mode):
            return  # symlinks, FIFOs (opening one blocks), sockets, devices: never instrument data
        if self.filter.wants(path):
            self._consider_file(root, path, (st.st_size, st.st_mtime_ns))

    def _consider_file(self, root: Path, path: Path, stat: tuple[int, int]) -> None:
        """Start settling ``path`` unless it is in flight or already packaged as it is now."""
        with self._lock:
            if path in self._in_flight or self._known.get(path_text(path)) == stat:
                return
        self.tracker.add(path)
        self.groupers[root].touch(path)

    def _advance(self) -> None:
        if not len(self.tracker) and not any(g.open for g in self.groupers.values()):
            return
        settled, vanished = self.tracker.poll()
        for p in vanished:
            self._forget(p)
        for f in settled:
            self._forget(f.path)
            if self.filter.is_sheet(f.path):
                if self.on_sheet is not None:
                    self.on_sheet(self.inst.id, f.path)
                with self._lock:
                    self._known[path_text(f.path)] = (f.size, f.mtime_ns)
                continue
            root = self._root_of(f.path)
            if root is not None:
                with self._lock:
                    self._in_flight.add(f.path)  # settled into a group: rescans must not restart it
                self.groupers[root].add(f, is_marker=self.filter.is_marker(f.path))
        self._report_problems()
        pending = set(self.tracker.pending)
        # what the local page shows as "arriving (settling)", so a dropped file is visible at once
        self.health.set(f"settling:{self.inst.id}", sorted(p.name for p in pending)[:20])
        for grouper in self.groupers.values():
            for m in grouper.ready(pending):
                self.emit(m)

    def _report_problems(self) -> None:
        # Only the settle tracker's own problems are rebuilt here: the pipeline's ("file:") and the
        # rescan's ("scan:") stay until their owner clears them.
        self.health.clear_problems(f"settle:{self.inst.id}:")
        for path, msg in list(self.tracker.problems.items())[:50]:
            self.health.problem(f"settle:{self.inst.id}:{path}", msg, kind="warning")
        # not a problem: an instrument writing a long measurement; said so the user knows why it waits
        shown = {f"open:{self.inst.id}:{path}": msg for path, msg in list(self.tracker.waiting.items())[:50]}
        for key in set(self._waiting_shown) - set(shown):
            self.health.clear_problem(key)
        for key, msg in shown.items():
            self.health.problem(key, msg, kind="info")  # unchanged: a no-op, so "since" stays
        self._waiting_shown = shown

    def _rescan(self, initial: bool = False) -> None:
        t0 = time.monotonic()
        seen = 0
        label = f"catch-up scan of {self.inst.id}" if initial else f"rescan of {self.inst.id}"
        self.health.clear_problems(f"scan:{self.inst.id}:")  # this scan reports afresh
        for root in self.roots:
            try:
                for path, size, mtime in scan_tree(root, self.filter, recursive=self.inst.recursive,
                                                   on_error=self._scan_error):
                    seen += 1
                    if seen % 20000 == 0:
                        self.health.progress(f"scan:{self.inst.id}", seen, 0, f"{label}: {seen} files examined")
                        log.info("%s: %d files examined", label, seen)
                        if self.stopping:
                            return
                    if path not in self.tracker:
                        self._consider_file(root, path, (size, mtime))
                self.health.clear_problem(f"watch:{self.inst.id}:{root}")
            except WatchRootUnavailable as exc:
                self.health.problem(f"watch:{self.inst.id}:{root}", f"{exc}; retrying every "
                                    f"{self.rescan_seconds:.0f} s")
        self.health.end_progress(f"scan:{self.inst.id}")
        self.scans_done += 1
        took = time.monotonic() - t0
        (log.info if initial else log.debug)("%s: %d files in %.2f s, %d to settle", label, seen, took,
                                             len(self.tracker))
        self.health.set(f"last_scan:{self.inst.id}", {"files": seen, "seconds": round(took, 3), "at": time.time()})

    def _scan_error(self, path: Path, exc: OSError) -> None:
        self.health.problem(f"scan:{self.inst.id}:{path}", f"{path}: cannot be read ({exc.strerror})", kind="warning")
