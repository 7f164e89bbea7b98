"""Sheets and holds in the agent's SQLite state (tables from migration ``0002_sheets``)."""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.measurement import Measurement, SourceFile
from agent.state.store import StateStore


@dataclass(frozen=True)
class SheetRow:
    id: str
    template: str
    instrument_id: str | None
    source: str                 # "web", "file"
    folder: str | None
    file_path: str | None
    values: dict[str, Any]
    created_at: float
    activated_at: float | None
    closed_at: float | None

    def summary(self) -> dict[str, Any]:
        return {"sheet_id": self.id, "template": self.template, "source": self.source,
                "sample": self.values.get("sample.names"), "since": self.activated_at or self.created_at,
                **({"file": self.file_path} if self.file_path else {})}


@dataclass(frozen=True)
class HoldRow:
    fingerprint: str
    instrument_id: str
    mkey: str
    measurement: Measurement
    held_at: float
    settled_at: float
    state: str
    sheet_id: str | None
    resubmitted_at: float | None

    def summary(self) -> dict[str, Any]:
        m = self.measurement
        return {"hold": self.fingerprint, "instrument_id": self.instrument_id, "key": self.mkey,
                "name": m.name, "files": [f.rel for f in m.files][:20], "n_files": len(m.files),
                "bytes": sum(f.size for f in m.files), "held_at": self.held_at, "sheet_id": self.sheet_id}


def fingerprint(m: Measurement) -> str:
    h = hashlib.sha256(m.instrument_id.encode())
    for f in sorted(m.files, key=lambda f: str(f.path)):
        h.update(f"\0{f.path}\0{f.size}\0{f.mtime_ns}".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:32]


def measurement_to_json(m: Measurement) -> str:
    return json.dumps({"instrument_id": m.instrument_id, "key": m.key, "settled_at": m.settled_at,
                       "watch_root": str(m.watch_root),
                       "files": [{"path": str(f.path), "rel": f.rel, "size": f.size, "mtime_ns": f.mtime_ns}
                                 for f in m.files]}, ensure_ascii=False)


def measurement_from_json(text: str) -> Measurement:
    d = json.loads(text)
    return Measurement(instrument_id=d["instrument_id"], key=d["key"], settled_at=d["settled_at"],
                       watch_root=Path(d["watch_root"]),
                       files=[SourceFile(Path(f["path"]), f["rel"], f["size"], f["mtime_ns"]) for f in d["files"]])


_SHEET_COLS = "id, template, instrument_id, source, folder, file_path, sheet_values, created_at, activated_at, closed_at"
_HOLD_COLS = "fingerprint, instrument_id, mkey, measurement, held_at, settled_at, state, sheet_id, resubmitted_at"


def _sheet(row: tuple) -> SheetRow:
    return SheetRow(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]), row[7], row[8], row[9])


def _hold(row: tuple) -> HoldRow:
    return HoldRow(row[0], row[1], row[2], measurement_from_json(row[3]), row[4], row[5], row[6], row[7], row[8])


class SheetDB:
    def __init__(self, store: StateStore) -> None:
        self.store = store

    def _q(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self.store._lock:  # the store's one connection is shared by all threads
            return list(self.store.conn.execute(sql, args))

    # -- sheets ------------------------------------------------------------------------------
    def save_sheet(self, sheet_id: str, template: str, values: dict[str, Any], *, source: str,
                   instrument_id: str | None = None, folder: str | None = None,
                   file: tuple[str, int, int] | None = None) -> None:
        """Insert, or (same id from a rewritten sheet file) replace the values."""
        now = time.time()
        fpath, fsize, fmtime = file if file else (None, None, None)
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO sheets (id, template, instrument_id, source, folder, file_path, file_size, file_mtime_ns,"
                " sheet_values, created_at) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET"
                " template=excluded.template, sheet_values=excluded.sheet_values, folder=excluded.folder,"
                " file_path=excluded.file_path, file_size=excluded.file_size, file_mtime_ns=excluded.file_mtime_ns,"
                " created_at=excluded.created_at",
                (sheet_id, template, instrument_id, source, folder, fpath, fsize, fmtime,
                 json.dumps(values, ensure_ascii=False), now))

    def activate(self, instrument_id: str, sheet_id: str, at: float | None = None) -> None:
        at = time.time() if at is None else at
        with self.store.transaction() as conn:
            conn.execute("UPDATE sheets SET closed_at=? WHERE instrument_id=? AND activated_at IS NOT NULL"
                         " AND closed_at IS NULL", (at, instrument_id))
            conn.execute("UPDATE sheets SET instrument_id=?, activated_at=?, closed_at=NULL WHERE id=?",
                         (instrument_id, at, sheet_id))

    def close_active(self, instrument_id: str, at: float | None = None) -> int:
        with self.store.transaction() as conn:
            return conn.execute("UPDATE sheets SET closed_at=? WHERE instrument_id=? AND activated_at IS NOT NULL"
                                " AND closed_at IS NULL", (time.time() if at is None else at, instrument_id)).rowcount

    def active_at(self, instrument_id: str, t: float) -> SheetRow | None:
        rows = self._q(f"SELECT {_SHEET_COLS} FROM sheets WHERE instrument_id=? AND activated_at IS NOT NULL"
                       " AND activated_at<=? AND (closed_at IS NULL OR closed_at>?) ORDER BY activated_at DESC LIMIT 1",
                       (instrument_id, t, t))
        return _sheet(rows[0]) if rows else None

    def active(self, instrument_id: str) -> SheetRow | None:
        rows = self._q(f"SELECT {_SHEET_COLS} FROM sheets WHERE instrument_id=? AND activated_at IS NOT NULL"
                       " AND closed_at IS NULL ORDER BY activated_at DESC LIMIT 1", (instrument_id,))
        return _sheet(rows[0]) if rows else None

    def sheet(self, sheet_id: str) -> SheetRow | None:
        rows = self._q(f"SELECT {_SHEET_COLS} FROM sheets WHERE id=?", (sheet_id,))
        return _sheet(rows[0]) if rows else None

    def file_sheet(self, path: str) -> tuple[SheetRow, int, int] | None:
        rows = self._q(f"SELECT {_SHEET_COLS}, file_size, file_mtime_ns FROM sheets WHERE file_path=?"
                       " ORDER BY created_at DESC LIMIT 1", (path,))
        return (_sheet(rows[0][:10]), rows[0][10], rows[0][11]) if rows else None

    def recent(self, instrument_id: str | None = None, limit: int = 20) -> list[SheetRow]:
        sql = f"SELECT {_SHEET_COLS} FROM sheets"
        args: tuple = ()
        if instrument_id:
            sql += " WHERE instrument_id=? OR instrument_id IS NULL"
            args = (instrument_id,)
        return [_sheet(r) for r in self._q(sql + " ORDER BY created_at DESC LIMIT ?", (*args, limit))]

    # -- holds -------------------------------------------------------------------------------
    def hold(self, fp: str) -> HoldRow | None:
        rows = self._q(f"SELECT {_HOLD_COLS} FROM holds WHERE fingerprint=?", (fp,))
        return _hold(rows[0]) if rows else None

    def add_hold(self, fp: str, m: Measurement) -> HoldRow:
        """Idempotent: a measurement re-found after a restart keeps its first hold time."""
        with self.store.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO holds (fingerprint, instrument_id, mkey, measurement, held_at,"
                         " settled_at, state) VALUES (?,?,?,?,?,?,'held')",
                         (fp, m.instrument_id, m.key, measurement_to_json(m), time.time(), m.settled_at))
            conn.execute("UPDATE holds SET state='held', outcome=NULL WHERE fingerprint=? AND state='gone'", (fp,))
        row = self.hold(fp)
        assert row is not None
        return row

    def holds(self, instrument_id: str | None = None, limit: int = 500) -> list[HoldRow]:
        sql = f"SELECT {_HOLD_COLS} FROM holds WHERE state='held'"
        args: tuple = ()
        if instrument_id:
            sql += " AND instrument_id=?"
            args = (instrument_id,)
        return [_hold(r) for r in self._q(sql + " ORDER BY held_at LIMIT ?", (*args, limit))]

    def count_held(self) -> int:
        return self._q("SELECT count(*) FROM holds WHERE state='held'")[0][0]

    def assign(self, fp: str, sheet_id: str) -> bool:
        with self.store.transaction() as conn:
            return conn.execute("UPDATE holds SET sheet_id=? WHERE fingerprint=? AND state='held'",
                                (sheet_id, fp)).rowcount > 0

    def mark_resubmitted(self, fp: str) -> None:
        with self.store.transaction() as conn:
            conn.execute("UPDATE holds SET resubmitted_at=? WHERE fingerprint=?", (time.time(), fp))

    def finish(self, fp: str, state: str, outcome: str) -> None:
        with self.store.transaction() as conn:
            conn.execute("UPDATE holds SET state=?, outcome=?, released_at=? WHERE fingerprint=?",
                         (state, outcome, time.time(), fp))


def sheets_status(store: StateStore, instrument_ids: list[str],
                  send_after: dict[str, float] | None = None) -> dict[str, Any]:
    """For `labedge status`: held measurements (with ``unpaired_at`` where the instrument's policy sends
    them unpaired after ``send_after[instrument]`` seconds) and the active sheet of each instrument."""
    db = SheetDB(store)
    try:
        held = db.holds(limit=50)
        n = db.count_held()
        active = {iid: (s.summary() if (s := db.active(iid)) else None) for iid in instrument_ids}
    except Exception as exc:  # an older DB without 0002_sheets opened read-only: no sheets yet
        if "no such table" in str(exc):
            return {"held": 0, "held_list": [], "active": {iid: None for iid in instrument_ids}}
        raise
    held_list = [h.summary() for h in held]
    for h in held_list:
        if send_after and h["instrument_id"] in send_after:
            h["unpaired_at"] = h["held_at"] + send_after[h["instrument_id"]]
    return {"held": n, "held_list": held_list, "active": active}
