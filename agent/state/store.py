"""The agent's durable state: files seen, packages and their upload state, health facts.

SQLite in WAL mode with ``synchronous=FULL``: a committed row survives kill -9 and power loss.
One connection guarded by a lock serves all threads of the agent; other processes
(``labedge status``, the tray) open their own read connections.
"""
from __future__ import annotations

import dataclasses

import json
import sqlite3
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from agent.state.migrations import MIGRATIONS, apply_migrations
from agent.package.safe_names import path_text


def _import_sqlite_utils():  # noqa: ANN202
    """sqlite-utils imports pandas and numpy whenever they are installed, only for DataFrame column
    types we never use. The agent runs for months on old PCs: that is ~40 MiB of RSS and 0.3 s of
    start-up for nothing, so hide them during this one import (translators import them in their
    own sandboxed processes)."""
    hidden = [m for m in ("pandas", "numpy") if m not in sys.modules]
    for m in hidden:
        sys.modules[m] = None  # type: ignore[assignment]  # makes `import m` raise ImportError
    try:
        import sqlite_utils
    finally:
        for m in hidden:
            if sys.modules.get(m, 0) is None:
                del sys.modules[m]
    return sqlite_utils


sqlite_utils = _import_sqlite_utils()

STATES = ("queued", "uploading", "delivered", "failed", "superseded")
#: A package in one of these states has not left the PC, so a later version may replace it.
REPLACEABLE = ("queued", "failed")


@dataclass(frozen=True)
class FileRecord:
    path: str
    size: int
    mtime_ns: int
    sha256: str


@dataclass(frozen=True)
class PackageRow:
    id: str
    instrument_id: str
    kind: str
    parent_id: str | None
    state: str
    path: str
    bytes: int
    n_files: int
    created_at: float
    attempts: int
    last_error: str | None
    delivered_at: float | None


class NotMigrated(Exception):
    """The state DB exists, but the agent has not finished creating its tables yet: no data yet."""


def _require_migrated(conn: sqlite3.Connection, path: Path) -> None:
    """A reader (status, tray, demo) can open the file between its creation and the migrations."""
    try:
        done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    except sqlite3.OperationalError:  # "no such table": created, not yet migrated
        done = set()
    except sqlite3.DatabaseError:
        conn.close()
        raise
    if not {name for name, _ in MIGRATIONS} <= done:
        conn.close()
        raise NotMigrated(f"{path}: the agent is still setting up its state database")


def open_reader(path: Path) -> "StateStore | None":
    """A read-only store, or None when there is no data yet (no file, or not migrated yet)."""
    if not Path(path).exists():
        return None
    try:
        return StateStore(path, readonly=True)
    except NotMigrated:
        return None


class StateStore:
    """Thread-safe access to the state database at ``path``."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        if readonly:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None,
                                   check_same_thread=False, timeout=10)
            _require_migrated(conn, self.path)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            apply_migrations(conn)
        conn.execute("PRAGMA busy_timeout=10000")
        self.conn = conn
        self.db = sqlite_utils.Database(conn)

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException:
                # SQLite may already have rolled back (e.g. SQLITE_FULL); a failed COMMIT may not
                # have: either way the connection must leave the transaction or it is wedged.
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise

    # -- files -------------------------------------------------------------------------------
    def known_files(self, instrument_id: str | None = None) -> dict[str, tuple[int, int]]:
        """Latest packaged (size, mtime_ns) per path; loaded once per scan, so 100k paths is cheap."""
        sql = "SELECT path, size, mtime_ns, max(version) FROM files"
        args: tuple[Any, ...] = ()
        if instrument_id is not None:
            sql += " WHERE instrument_id = ?"
            args = (instrument_id,)
        sql += " GROUP BY path"
        with self._lock:
            return {p: (s, m) for p, s, m, _ in self.conn.execute(sql, args)}

    def is_packaged(self, path: str, size: int, mtime_ns: int) -> bool:
        path = path_text(path)  # a name that is not UTF-8 cannot be a SQLite text (security 10)
        with self._lock:
            row = self.conn.execute("SELECT 1 FROM files WHERE path=? AND size=? AND mtime_ns=?",
                                    (path, size, mtime_ns)).fetchone()
        return row is not None

    def files_of(self, package_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.db.query("SELECT * FROM files WHERE package_id=? ORDER BY path", [package_id]))

    # -- packages ----------------------------------------------------------------------------
    def add_package(self, *, package_id: str, instrument_id: str, path: str, nbytes: int,
                    files: list[FileRecord], kind: str = "measurement", parent_id: str | None = None,
                    translation: dict[str, Any] | None = None, pairing: dict[str, Any] | None = None,
                    created_at: float | None = None, supersede: Iterable[str] = ()) -> bool:
        """Record a built package and its source files in one transaction.

        ``supersede``: earlier packages this one replaces; those still on the PC (queued or failed)
        become "superseded" in the same transaction, so a crash never leaves both queued.
        Idempotent: returns False if the package id is already known (crash-recovery re-registers).
        """
        now = time.time()
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM packages WHERE id=?", (package_id,)).fetchone():
                return False
            for old in supersede:
                conn.execute(f"UPDATE packages SET state='superseded', superseded_by=? WHERE id=? AND state IN "
                             f"({','.join('?' * len(REPLACEABLE))})", (package_id, old, *REPLACEABLE))
            conn.execute(
                "INSERT INTO packages (id, instrument_id, kind, parent_id, state, path, bytes, n_files,"
                " created_at, translation, pairing) VALUES (?,?,?,?,'queued',?,?,?,?,?,?)",
                (package_id, instrument_id, kind, parent_id, path, nbytes, len(files), created_at or now,
                 json.dumps(translation) if translation else None, json.dumps(pairing) if pairing else None))
            for f in files:
                f = dataclasses.replace(f, path=path_text(f.path))
                version = conn.execute("SELECT count(*) FROM files WHERE path=?", (f.path,)).fetchone()[0] + 1
                conn.execute(
                    "INSERT OR IGNORE INTO files (path, size, mtime_ns, sha256, instrument_id, package_id, version,"
                    " recorded_at) VALUES (?,?,?,?,?,?,?,?)",
                    (f.path, f.size, f.mtime_ns, f.sha256, instrument_id, package_id, version, now))
        return True

    def previous_packages(self, paths: Iterable[str]) -> list[PackageRow]:
        """The packages holding the latest recorded version of any of ``paths`` (what a new
        version of those files supersedes)."""
        ids: set[str] = set()
        with self._lock:
            for path in paths:
                row = self.conn.execute("SELECT package_id FROM files WHERE path=? ORDER BY version DESC LIMIT 1",
                                        (path_text(path),)).fetchone()
                if row:
                    ids.add(row[0])
        return [r for r in (self.package(i) for i in sorted(ids)) if r is not None]

    def superseded_by(self, package_id: str) -> str | None:
        with self._lock:
            row = self.conn.execute("SELECT superseded_by FROM packages WHERE id=?", (package_id,)).fetchone()
        return row[0] if row else None

    def claim_for_upload(self, package_id: str) -> bool:
        """queued -> uploading, only if still queued (a later version may have superseded it)."""
        with self.transaction() as conn:
            return conn.execute("UPDATE packages SET state='uploading', attempts=attempts+1 "
                                "WHERE id=? AND state='queued'", (package_id,)).rowcount == 1

    def package(self, package_id: str) -> PackageRow | None:
        with self._lock:
            rows = list(self.db.query(f"SELECT {self._cols()} FROM packages WHERE id=?", [package_id]))
        return PackageRow(**rows[0]) if rows else None

    def pairing_of(self, package_id: str) -> dict[str, Any] | None:
        """How the package was paired (status, sheet_id, source), as recorded when it was built: what
        the local page shows once a delivered package's spool copy, and its provenance, are gone."""
        with self._lock:
            row = self.conn.execute("SELECT pairing FROM packages WHERE id=?", (package_id,)).fetchone()
        try:
            value = json.loads(row[0]) if row and row[0] else None
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def package_ids(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self.conn.execute("SELECT id FROM packages")}

    def list_packages(self, state: str | None = None, limit: int = 200) -> list[PackageRow]:
        sql = f"SELECT {self._cols()} FROM packages"
        args: list[Any] = []
        if state:
            sql += " WHERE state=?"
            args.append(state)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            return [PackageRow(**r) for r in self.db.query(sql, args)]

    def next_queued(self) -> PackageRow | None:
        """Oldest package waiting for upload (ids sort by time)."""
        with self._lock:
            rows = list(self.db.query(
                f"SELECT {self._cols()} FROM packages WHERE state='queued' ORDER BY id LIMIT 1"))
        return PackageRow(**rows[0]) if rows else None

    def set_state(self, package_id: str, state: str, error: str | None = None, *,
                  count_attempt: bool = False) -> None:
        if state not in STATES:
            raise ValueError(f"unknown package state {state!r}; allowed: {', '.join(STATES)}")
        with self.transaction() as conn:
            conn.execute(
                "UPDATE packages SET state=?, last_error=?, attempts=attempts+?,"
                " delivered_at=CASE WHEN ?='delivered' THEN ? ELSE delivered_at END WHERE id=?",
                (state, error, 1 if count_attempt else 0, state, time.time(), package_id))

    def recover_interrupted(self) -> int:
        """After a crash, uploads in flight go back to the queue (the receiver dedupes)."""
        with self.transaction() as conn:
            return conn.execute("UPDATE packages SET state='queued' WHERE state='uploading'").rowcount

    def retry_failed(self) -> int:
        with self.transaction() as conn:
            return conn.execute("UPDATE packages SET state='queued', last_error=NULL WHERE state='failed'").rowcount

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATES}
        with self._lock:
            for state, n in self.conn.execute("SELECT state, count(*) FROM packages GROUP BY state"):
                out[state] = n
        return out

    def oldest_queued_created(self) -> float | None:
        with self._lock:
            row = self.conn.execute(
                "SELECT min(created_at) FROM packages WHERE state IN ('queued','uploading')").fetchone()
        return row[0] if row else None

    def spool_bytes(self) -> int:
        """Bytes held in the spool by packages not yet delivered (delivered ones are released)."""
        with self._lock:
            row = self.conn.execute("SELECT coalesce(sum(bytes),0) FROM packages "
                                   "WHERE state NOT IN ('delivered', 'superseded')").fetchone()
        return int(row[0])

    # -- health ------------------------------------------------------------------------------
    def set_health(self, key: str, value: Any) -> None:
        with self._lock:
            self.conn.execute("INSERT INTO health (key, value, updated_at) VALUES (?,?,?) "
                              "ON CONFLICT(key) DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at",
                              (key, json.dumps(value), time.time()))

    def health(self) -> dict[str, Any]:
        with self._lock:
            return {k: {"value": json.loads(v), "updated_at": t}
                    for k, v, t in self.conn.execute("SELECT key, value, updated_at FROM health")}

    # -- user control (tray / local page -> running agent) ----------------------------------
    def set_control(self, **changes: Any) -> dict[str, Any]:
        """Merge ``changes`` into the control record the running agent polls (pause, retry)."""
        with self.transaction() as conn:
            row = conn.execute("SELECT value FROM health WHERE key='control'").fetchone()
            value = json.loads(row[0]) if row else {}
            value.update(changes)
            conn.execute("INSERT INTO health (key, value, updated_at) VALUES ('control',?,?) "
                         "ON CONFLICT(key) DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at",
                         (json.dumps(value), time.time()))
        return value

    def control(self) -> dict[str, Any]:
        with self._lock:
            row = self.conn.execute("SELECT value FROM health WHERE key='control'").fetchone()
        return json.loads(row[0]) if row else {}

    @staticmethod
    def _cols() -> str:
        return ("id, instrument_id, kind, parent_id, state, path, bytes, n_files, created_at, attempts,"
                " last_error, delivered_at")
