"""The trial of a new remote config: is the agent still doing its job with it?

Fatal at once: a component thread stopped, or a watch folder cannot be read. Needed by the end of
``trial_seconds`` when upload is configured: connected to the broker and (where the status channel
is built in) one status document published since the trial began. Otherwise the trial fails with
the reason in words and the last known good config comes back.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Iterable

from agent.config import Config


@dataclass
class TrialVerdict:
    fatal: str | None = None       # roll back now
    pending: str | None = None     # not there yet; a failure if still so at the deadline

    @property
    def ok(self) -> bool:
        return self.fatal is None and self.pending is None


def judge(cfg: Config, threads: Iterable[threading.Thread], facts: dict[str, Any], *,
          status_sent: int | None = None) -> TrialVerdict:
    """``status_sent``: status documents the (new) publisher sent, None where there is no status channel."""
    dead = [t.name for t in threads if not t.is_alive()]
    if dead:
        return TrialVerdict(fatal=f"component stopped with the new config: {', '.join(dead)}")
    for inst in cfg.instruments:
        for folder in inst.watch:
            try:
                with os.scandir(folder) as it:
                    next(it, None)
            except OSError as exc:
                return TrialVerdict(fatal=f"instrument {inst.id}: watch folder {str(folder)!r} cannot be read "
                                          f"({exc.strerror or exc})")
    if cfg.upload is not None:
        up = facts.get("upload") or {}
        if not up.get("connected"):
            err = up.get("last_error")
            return TrialVerdict(pending=f"not connected to the broker {cfg.upload.broker}"
                                        + (f" ({err})" if err else ""))
        if status_sent is not None and status_sent < 1:
            return TrialVerdict(pending="no status document published to the facility yet")
    return TrialVerdict()
