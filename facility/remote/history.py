"""The facility's record of remote config: who pushed what and when, and what each device did.

An SQLite file beside fleet.toml (``remote-history.sqlite3``) with named migrations, plus an append-only
audit log (``remote-audit.jsonl``). A rollout in progress can be aborted from another shell: ``--abort``
marks it here and the pushing process stops before its next wave.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

MIGRATIONS: list[tuple[str, str]] = [
    ("0001_remote_history", """
        CREATE TABLE pushes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            version INTEGER NOT NULL,
            signer TEXT NOT NULL,
            key_id TEXT NOT NULL,
            targets TEXT NOT NULL,           -- JSON {"devices": [...]} or {"groups": [...]}
            fragment TEXT NOT NULL,          -- the TOML that was signed
            document TEXT NOT NULL,          -- the signed bundle as published
            pushed_at REAL NOT NULL,
            state TEXT NOT NULL,             -- running / done / stopped / aborted / aborting
            note TEXT
        );
        CREATE TABLE results (
            push_id INTEGER NOT NULL REFERENCES pushes(id),
            device TEXT NOT NULL,
            version INTEGER NOT NULL,
            state TEXT NOT NULL,             -- sent / applied / refused / rolled_back / no_answer
            reason TEXT,
            at REAL NOT NULL,
            PRIMARY KEY (push_id, device)
        );
    """),
]


class History:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL)")
        done = {r[0] for r in self.conn.execute("SELECT name FROM _migrations")}
        for name, sql in MIGRATIONS:
            if name not in done:
                # one transaction per migration, its record inside it
                self.conn.executescript("BEGIN;" + sql + f"INSERT INTO _migrations VALUES ('{name}', {time.time()});COMMIT;")
        self.audit_file = self.path.with_name("remote-audit.jsonl")

    @classmethod
    def beside(cls, fleet_toml: Path) -> "History":
        return cls(Path(fleet_toml).parent / "remote-history.sqlite3")

    def close(self) -> None:
        self.conn.close()

    # ------------------------------------------------------------------ audit
    def audit(self, event: str, **fields: Any) -> None:
        line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": event, **fields},
                          ensure_ascii=False, sort_keys=True) + "\n"
        fd = os.open(self.audit_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ pushes
    def max_version(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(MAX(version), 0) FROM pushes").fetchone()[0])

    def start_push(self, *, version: int, signer: str, key_id: str, targets: dict[str, Any], fragment: str,
                   document: bytes) -> int:
        cur = self.conn.execute(
            "INSERT INTO pushes (version, signer, key_id, targets, fragment, document, pushed_at, state) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'running')",
            (version, signer, key_id, json.dumps(targets, sort_keys=True), fragment, document.decode("utf-8"),
             time.time()))
        pid = int(cur.lastrowid or 0)
        self.audit("push", push_id=pid, version=version, signer=signer, key_id=key_id, targets=targets)
        return pid

    def finish_push(self, push_id: int, state: str, note: str = "") -> None:
        self.conn.execute("UPDATE pushes SET state = ?, note = ? WHERE id = ?", (state, note, push_id))
        self.audit("rollout_" + state, push_id=push_id, note=note)

    def result(self, push_id: int, device: str, version: int, state: str, reason: str = "") -> None:
        self.conn.execute("INSERT INTO results (push_id, device, version, state, reason, at) VALUES (?,?,?,?,?,?) "
                          "ON CONFLICT (push_id, device) DO UPDATE SET state = excluded.state, "
                          "reason = excluded.reason, at = excluded.at",
                          (push_id, device, version, state, reason, time.time()))
        if state != "sent":
            self.audit("device_" + state, push_id=push_id, device=device, version=version, reason=reason)

    def unanswered(self) -> list[sqlite3.Row]:
        """Devices a push reached without a report yet (offline then): filled in when they report."""
        return list(self.conn.execute("SELECT push_id, device, version FROM results "
                                      "WHERE state IN ('sent', 'no_answer') ORDER BY push_id"))

    def running(self) -> list[sqlite3.Row]:
        return list(self.conn.execute("SELECT * FROM pushes WHERE state IN ('running', 'aborting') ORDER BY id"))

    def request_abort(self) -> list[int]:
        ids = [r["id"] for r in self.running()]
        for i in ids:
            self.conn.execute("UPDATE pushes SET state = 'aborting' WHERE id = ? AND state = 'running'", (i,))
            self.audit("abort_requested", push_id=i)
        return ids

    def abort_requested(self, push_id: int) -> bool:
        row = self.conn.execute("SELECT state FROM pushes WHERE id = ?", (push_id,)).fetchone()
        return row is not None and row[0] == "aborting"

    def pushes(self, limit: int = 50) -> list[dict[str, Any]]:
        out = []
        for r in self.conn.execute("SELECT * FROM pushes ORDER BY id DESC LIMIT ?", (limit,)):
            d = dict(r)
            d.pop("document")
            d["targets"] = json.loads(d["targets"])
            d["results"] = [dict(x) for x in self.conn.execute(
                "SELECT device, version, state, reason, at FROM results WHERE push_id = ? ORDER BY device", (r["id"],))]
            out.append(d)
        return out

    def fragment_of(self, version: int) -> str | None:
        row = self.conn.execute("SELECT fragment FROM pushes WHERE version = ? ORDER BY id DESC LIMIT 1",
                                (version,)).fetchone()
        return row[0] if row else None
