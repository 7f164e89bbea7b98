"""One stop protocol for every long-lived thread of the agent.

A worker loops until ``stop()``; it sleeps only through ``self.wait()`` so a stop wakes it at
once. ``stop_all`` stops, joins and reports threads that did not finish (tests fail on those).
"""
from __future__ import annotations

import logging
import threading
from typing import Iterable

log = logging.getLogger(__name__)


class Worker(threading.Thread):
    """Base class: override ``loop_once`` (one unit of work) or ``run``; call ``wait`` to sleep."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()
        self.wake()

    def wake(self) -> None:
        """Interrupt a blocking call other than ``wait`` (a queue get, a socket); override if needed."""

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if a stop was requested."""
        return self._stop_event.wait(seconds)

    def run(self) -> None:
        try:
            while not self.stopping:
                self.loop_once()
        except Exception:  # a crashed worker must be loud, not silent
            log.exception("worker %s crashed", self.name)
            raise

    def loop_once(self) -> None:  # pragma: no cover - overridden
        self.wait(1.0)


def stop_all(workers: Iterable[threading.Thread], timeout: float = 10.0) -> list[str]:
    """Stop every worker, join them, and return the names of those still alive."""
    workers = [w for w in workers if w is not None]
    for w in workers:
        stop = getattr(w, "stop", None)
        if stop is not None:
            stop()
    leaked = []
    for w in workers:
        if w.is_alive() and w is not threading.current_thread():
            w.join(timeout)
            if w.is_alive():
                leaked.append(w.name)
    if leaked:
        log.error("threads did not stop within %.0f s: %s", timeout, ", ".join(leaked))
    return leaked
