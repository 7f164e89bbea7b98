"""Measurements whose translator said "looks truncated": wait a grace period before they ship.

A writer that pauses longer than ``settle_seconds`` makes a file look finished. If the
translator then says the file looks cut short, the built package is kept off the queue for
``truncated_grace_seconds``: if the file changes meanwhile, the package is dropped and the
watcher takes the file again (one package, with the final bytes); if it does not, the package
ships as it is, its translation report saying what looked wrong.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.measurement import Measurement
from agent.package.builder import BuiltPackage

if TYPE_CHECKING:  # pragma: no cover
    from agent.pipeline import Pipeline

log = logging.getLogger(__name__)


@dataclass
class _Held:
    m: Measurement
    built: BuiltPackage
    previous: list[str]
    deadline: float


class TruncationWaiter:
    """Runs on the pipeline's thread only (hold / check / drop_all), so it needs no lock."""

    def __init__(self, pipeline: "Pipeline", clock=time.monotonic) -> None:  # noqa: ANN001
        self.pipeline = pipeline
        self.clock = clock
        self.held: dict[str, _Held] = {}

    def hold(self, m: Measurement, built: BuiltPackage, previous: list[str], grace: float) -> bool:
        """Keep ``built`` back for ``grace`` s; False (ship it now) when there is no grace."""
        if grace <= 0:
            return False
        self.held[built.id] = _Held(m, built, previous, self.clock() + grace)
        msg = (f"{m.key}: the translator says it looks truncated; waiting up to {grace:.0f} s for the "
               "instrument to finish writing before it is sent")
        log.info("%s", msg)
        self.pipeline.health.problem(self._key(m), msg, kind="warning")
        return True

    def check(self) -> None:
        now = self.clock()
        for pid, h in list(self.held.items()):
            if _changed(h.m):
                del self.held[pid]
                self.pipeline.spool.release(pid)
                self.pipeline.health.clear_problem(self._key(h.m))
                log.info("%s changed while it looked truncated: the earlier copy is dropped, the new "
                         "content is taken", h.m.key)
                if self.pipeline.on_retake:
                    self.pipeline.on_retake(h.m)
            elif now >= h.deadline:
                del self.held[pid]
                self.pipeline.health.clear_problem(self._key(h.m))
                log.info("%s did not change within the grace period: sent as it is", h.m.key)
                try:
                    recorded = self.pipeline._record(h.m, h.built, h.previous)
                except Exception:  # noqa: BLE001 - never lose the measurement: the watcher takes it again
                    log.exception("recording %s failed", h.built.id)
                    self.pipeline.spool.release(pid)
                    recorded = False
                if not recorded and self.pipeline.on_retake:
                    self.pipeline.on_retake(h.m)

    def drop_all(self) -> None:
        """At stop: unrecorded packages go; the files are unpackaged, so the next start takes them."""
        for pid in list(self.held):
            self.pipeline.spool.release(pid)
        self.held.clear()

    @staticmethod
    def _key(m: Measurement) -> str:
        return f"truncated:{m.instrument_id}:{m.key}"


def _changed(m: Measurement) -> bool:
    for f in m.files:
        try:
            st = os.stat(f.path)
        except OSError:
            return True
        if (st.st_size, st.st_mtime_ns) != (f.size, f.mtime_ns):
            return True
    return False
