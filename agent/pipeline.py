"""The worker that turns measurements into queued packages: gate -> pair -> build -> enqueue."""
from __future__ import annotations

import collections
import logging
import threading
import time
from pathlib import Path
from typing import Callable

from agent.config import Config, rde_profile_of
from agent.health import Health
from agent.intake import IntakeGate, is_disk_full
from agent.measurement import Measurement
from agent.package.builder import BuildContext, BuiltPackage, Spool, build_package
from agent.package.copying import SourceChanged, SourceUnreadable
from agent.pairing import HOLD, Pairer
from agent.state.store import StateStore
from agent.truncation import TruncationWaiter
from agent.threads import Worker

log = logging.getLogger(__name__)


class Pipeline(Worker):
    """Single worker: measurements are built one at a time, in the order they settled."""

    def __init__(self, cfg: Config, store: StateStore, spool: Spool, health: Health, pairer: Pairer) -> None:
        super().__init__("pipeline")
        self.cfg, self.store, self.spool, self.health, self.pairer = cfg, store, spool, health, pairer
        self.gate = IntakeGate(store, spool.root, cfg.spool_max_bytes, cfg.min_free_bytes)
        self._queue: "collections.deque[Measurement]" = collections.deque()
        self._cv = threading.Condition()
        self.on_packaged: list[Callable[[Measurement, BuiltPackage], None]] = []
        self.on_retake: Callable[[Measurement], None] | None = None
        self.packaged = 0
        self.truncation = TruncationWaiter(self)
        pairer.bind(self.submit)

    def submit(self, m: Measurement) -> None:
        with self._cv:
            self._queue.append(m)
            self.health.set("measurements_waiting", len(self._queue))
            self._cv.notify()

    def wake(self) -> None:
        with self._cv:
            self._cv.notify_all()

    def pending(self) -> int:
        with self._cv:
            return len(self._queue)

    def run(self) -> None:
        from translators.pipeline import prewarm

        prewarm(self.cfg.translate_memory_mb)  # the first measurement need not wait for Python start-up
        try:
            super().run()
        finally:
            self.truncation.drop_all()

    def loop_once(self) -> None:
        self.truncation.check()
        with self._cv:
            if not self._queue and not self.stopping:
                self._cv.wait(0.5)  # bounded: the truncation waiter is checked between waits
            if self.stopping or not self._queue:
                return
            m = self._queue[0]
        try:
            done = self._process(m)
        except Exception as exc:  # a bug must not wedge the queue: report, move on, retry later
            if is_disk_full(exc):  # e.g. the pairer's own DB writes on a full disk
                log.error("%s: disk full (%s); intake paused until space is freed", m.key, exc)
                self.health.set("intake_paused", f"disk full ({exc}): intake paused until space is freed")
                self.wait(5.0)
                return
            log.exception("building a package for %s failed", m.key)
            self.health.problem(f"build:{m.key}", f"{m.key}: package could not be built ({exc}); "
                                "it will be retried", kind="error")
            with self._cv:
                if self._queue and self._queue[0] is m:
                    self._queue.rotate(-1)
            self.wait(5.0)
            return
        if done:
            with self._cv:
                if self._queue and self._queue[0] is m:
                    self._queue.popleft()
                self.health.set("measurements_waiting", len(self._queue))

    def _progress_reporter(self) -> Callable[[str, int, int], None]:
        """Progress of a big copy: in `status` continuously, in the log every 10 %."""
        last_decile = -1

        def report(label: str, done: int, total: int) -> None:
            nonlocal last_decile
            self.health.progress("build", done, total, label)
            decile = done * 10 // total if total else 10
            if decile != last_decile and decile < 10:
                last_decile = decile
                log.info("%s: %d %% (%d of %d MiB)", label, decile * 10, done >> 20, total >> 20)

        return report

    def _pause_for_disk(self, what: str, exc: BaseException) -> bool:
        """Keep the measurement (it is retried) and tell the user why nothing is being taken in."""
        msg = f"{what}: intake paused until space is freed"
        log.error("%s (%s)", msg, exc)
        self.health.set("intake_paused", msg)
        self.wait(5.0)
        return False

    def _process(self, m: Measurement) -> bool:
        """True when ``m`` is done with (packaged, held, or handed back); False to retry it later."""
        if self.health.get("user_paused"):
            self.wait(1.0)  # paused from the tray or the local page: keep everything, take nothing
            return False
        size = sum(f.size for f in m.files)
        reason = self.gate.blocked_reason(size)
        if reason:
            if self.health.get("intake_paused") != reason:
                log.warning("intake paused: %s", reason)
            self.health.set("intake_paused", reason)
            self.wait(2.0)
            return False
        if self.health.get("intake_paused"):
            log.info("intake resumed")
            self.health.set("intake_paused", None)
        inst = self.cfg.instrument(m.instrument_id)
        pairing = self.pairer.pair(m, inst)
        if pairing.status == HOLD:
            log.info("%s: held until a sample sheet is given (%s)", m.key, pairing.details.get("reason", ""))
            return True
        ctx = BuildContext(self.cfg.device_id, self.cfg.translate_timeout_seconds, self.cfg.translate_memory_mb,
                           rde_profile=rde_profile_of(inst, self.cfg), progress=self._progress_reporter())
        # the packages holding the previous version of these files: named in provenance, and
        # replaced outright if they have not left the PC yet (agent.state.store.add_package)
        previous = [r.id for r in self.store.previous_packages([str(f.path) for f in m.files])]
        empty = bool(m.files) and not any(f.size for f in m.files)
        try:
            built = build_package(self.spool, m, pairing, ctx, translator=None if empty else inst.translator,
                                  template=inst.sheet_template, supersedes=previous)
        except (SourceChanged, SourceUnreadable) as exc:
            log.warning("%s", exc)
            key = f"file:{m.instrument_id}:{m.key}"
            # Unreadable stays until it is packaged; a vanished/changed file is news for 10 minutes.
            self.health.problem(key, str(exc), kind="warning",
                                ttl=None if isinstance(exc, SourceUnreadable) else 600)
            if self.on_retake:
                self.on_retake(m)
            return True
        except OSError as exc:
            if is_disk_full(exc):
                return self._pause_for_disk(f"disk full while building a package in {self.spool.root}", exc)
            raise
        finally:
            self.health.end_progress("build")
        if built.translation.get("looks_truncated") and self.truncation.hold(m, built, previous,
                                                                              inst.truncated_grace_seconds):
            return True  # the truncation waiter records it, or drops it when the file changes
        return self._record(m, built, previous)

    def _record(self, m: Measurement, built: BuiltPackage, previous: list[str]) -> bool:
        """Queue a built package (superseding ``previous`` that are still on the PC)."""
        try:
            self.store.add_package(package_id=built.id, instrument_id=m.instrument_id, path=str(built.path),
                                   nbytes=built.nbytes, files=built.files, translation=built.translation,
                                   pairing=built.pairing, supersede=previous)
        except Exception as exc:
            # Not recorded, so not queued: remove the bag, or the retry would build a second
            # package of this measurement (and recovery would adopt both after a restart).
            self.spool.release(built.id)
            if is_disk_full(exc):
                return self._pause_for_disk(f"disk full: the state database in {self.cfg.state_dir} cannot be written",
                                            exc)
            raise
        self.health.clear_problem(f"file:{m.instrument_id}:{m.key}")
        for old in previous:
            if self.store.superseded_by(old) == built.id:  # it never left the PC: free its space
                self.spool.release(old)
                log.info("%s superseded %s, which had not been uploaded (it never leaves this PC)", built.id, old)
        self.packaged += 1
        log.info("packaged %s (%d file(s), %d bytes) as %s [%s, %s]", m.key, len(m.files), built.nbytes, built.id,
                 built.pairing["status"], "translated by " + str(built.translation["translator"])
                 if built.translation["ok"] else "not translated: " + str(built.translation["error"]))
        for cb in self.on_packaged:
            cb(m, built)
        return True
