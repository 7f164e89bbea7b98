"""What the device remembers about remote config, and its audit log (``<state_dir>/remote/``).

- ``state.json``: applied and desired versions, the last outcome with its reason, the accepted trust
  documents (so an old key list stays refused after a restart), the trial in progress (written BEFORE
  the new layer, so a kill -9 during the trial is rolled back at the next start);
- ``lkg/``: the last known good remote layer (absent files = no remote layer);
- ``audit.jsonl``: one JSON line per received document, acceptance, refusal, trial, commit, rollback.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wire.durable import append_audit, fsync_dir, write_atomic

STATES = ("none", "refused", "trial", "applied", "rolled_back")
SEEN_MAX = 32


def remove_durably(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    fsync_dir(path.parent)


@dataclass
class RemoteState:
    applied_version: int = 0
    applied_signer: str | None = None
    applied_at: float | None = None
    desired_version: int = 0          # the newest version received, whatever became of it
    state: str = "none"
    reason: str = ""
    event_version: int = 0            # the version the state/reason is about
    tried_version: int = 0            # highest version ever staged: a rolled-back one is never retried
    updated_at: float | None = None
    trial: dict[str, Any] | None = None
    trust: dict[str, Any] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)   # digests of documents already handled

    def report(self) -> dict[str, Any]:
        """The part that goes on the status channel and into `labedge status`."""
        return {"desired_version": self.desired_version, "applied_version": self.applied_version,
                "state": self.state, "reason": self.reason, "version": self.event_version,
                "signer": self.applied_signer, "updated_at": self.updated_at}

    def outcome(self, state: str, version: int, reason: str = "") -> None:
        assert state in STATES, state
        self.state, self.event_version, self.reason, self.updated_at = state, version, reason, time.time()

    def remember(self, digest: str) -> None:
        if digest not in self.seen:
            self.seen = (self.seen + [digest])[-SEEN_MAX:]


class StateDir:
    def __init__(self, state_dir: Path) -> None:
        self.root = Path(state_dir) / "remote"
        self.file = self.root / "state.json"
        self.lkg = self.root / "lkg"
        self.audit_file = self.root / "audit.jsonl"

    def ensure(self) -> None:
        self.lkg.mkdir(parents=True, exist_ok=True)
        for d in (self.root, self.lkg):
            os.chmod(d, 0o700)

    def load(self) -> RemoteState:
        try:
            raw = json.loads(self.file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return RemoteState()
        except (OSError, ValueError):
            # unreadable state: start clean but keep the file for a person to look at
            os.replace(self.file, self.file.with_suffix(f".damaged-{int(time.time())}"))
            return RemoteState()
        known = {k: v for k, v in raw.items() if k in RemoteState.__dataclass_fields__}
        return RemoteState(**known)

    def save(self, st: RemoteState) -> None:
        self.ensure()
        write_atomic(self.file, json.dumps(asdict(st), indent=1, sort_keys=True).encode("utf-8"))

    def audit(self, event: str, **fields: Any) -> None:
        """Append one line and fsync: the device's own record of who changed its config, and why not."""
        self.ensure()
        append_audit(self.audit_file, event, **fields)

    def audit_lines(self) -> list[dict[str, Any]]:
        try:
            return [json.loads(x) for x in self.audit_file.read_text(encoding="utf-8").splitlines() if x.strip()]
        except FileNotFoundError:
            return []
