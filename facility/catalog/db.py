"""One small interface over sqlite3 and pg8000, so the catalog's SQL is written once.

SQL is written with ``?`` placeholders and the portable subset both engines accept
(``INSERT ... ON CONFLICT``, TEXT/BIGINT/DOUBLE PRECISION/INTEGER). pg8000 (BSD, pure Python) is
the PostgreSQL driver: see the comment in pyproject.toml.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import unquote, urlparse


class CatalogError(Exception):
    """The catalog cannot be opened or used; the message names the URL/file and why."""


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    u = urlparse(url)
    if u.password:
        return url.replace(f":{u.password}@", ":***@")
    return url


class Database:
    kind = "?"

    def __init__(self, conn: Any, placeholder: str) -> None:
        self.conn = conn
        self._ph = placeholder
        self.lock = threading.RLock()
        self._in_tx = False

    def _sql(self, sql: str) -> str:
        return sql if self._ph == "?" else sql.replace("?", self._ph)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement inside the current transaction; returns the rowcount."""
        cur = self.conn.cursor()
        try:
            cur.execute(self._sql(sql), tuple(params))
            return cur.rowcount
        finally:
            cur.close()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            cur = self.conn.cursor()
            try:
                cur.execute(self._sql(sql), tuple(params))
                rows = [tuple(r) for r in cur.fetchall()]
            finally:
                cur.close()
            if not self._in_tx:
                self.conn.commit()  # end the read transaction (PostgreSQL would hold a snapshot otherwise)
            return rows

    @contextlib.contextmanager
    def transaction(self) -> Iterator["Database"]:
        with self.lock:
            self._begin()
            self._in_tx = True
            try:
                yield self
            except BaseException:
                self.conn.rollback()
                raise
            else:
                self.conn.commit()
            finally:
                self._in_tx = False

    def _begin(self) -> None:
        pass

    def lock_migrations(self) -> None:
        """Inside a transaction: keep two receivers from migrating the same catalog at once."""

    def lock_pushes(self) -> None:
        """Inside a transaction: one administrator at a time allocates a push id and config version.

        SQLite needs nothing more: the transaction began with BEGIN IMMEDIATE (one writer at a time)."""

    def has_table(self, name: str) -> bool:
        """Whether ``name`` exists, asked without a failing query (on PostgreSQL a failed one would
        spoil the connection's transaction for the readers that share it)."""
        raise NotImplementedError

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()


class SqliteDatabase(Database):
    kind = "sqlite"

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        new = not path.exists()
        try:
            if readonly:  # the fleet tools: never create or change the receiver's catalog
                conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0,
                                       isolation_level=None, check_same_thread=False)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
                _wal(conn)
                conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable against process crashes
        except (sqlite3.Error, OSError) as exc:
            raise CatalogError(f"catalog {path}: cannot open: {exc}") from None
        if new and not readonly and os.name == "posix":
            os.chmod(path, 0o600)
        super().__init__(conn, "?")
        self.path = path

    def _begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            return [tuple(r) for r in self.conn.execute(sql, tuple(params)).fetchall()]

    def has_table(self, name: str) -> bool:
        return bool(self.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)))


def _wal(conn: sqlite3.Connection, patience: float = 30.0) -> None:
    """Switch a catalog to WAL. Switching needs the file to itself, and SQLite answers "locked" at once
    instead of waiting its busy timeout, so two tools opening a new catalog together (two pushes, a
    push and the receiver's first start) would fail: wait here as the busy timeout would."""
    deadline = time.monotonic() + patience
    delay = 0.01
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


class PostgresDatabase(Database):
    kind = "postgresql"

    def __init__(self, url: str) -> None:
        try:
            import pg8000.dbapi
        except ImportError:
            raise CatalogError("catalog_url is a PostgreSQL URL but the pg8000 driver is not installed "
                               "(pip install 'labedge[facility]')") from None
        u = urlparse(url)
        kw: dict[str, Any] = {"user": unquote(u.username or "postgres"), "host": u.hostname or "127.0.0.1",
                              "port": u.port or 5432, "database": (u.path or "/postgres").lstrip("/") or "postgres"}
        if u.password:
            kw["password"] = unquote(u.password)
        try:
            conn = pg8000.dbapi.connect(**kw, timeout=30, application_name="labedge")
        except Exception as exc:  # noqa: BLE001 - pg8000 raises several types; all become one sentence
            raise CatalogError(f"catalog {redact(url)}: cannot connect: {_pg_words(exc)}") from None
        super().__init__(conn, "%s")
        self.url = redact(url)

    def lock_migrations(self) -> None:
        self.execute("SELECT pg_advisory_xact_lock(?)", (0x6C616265,))  # "labe": one lock per database

    def has_table(self, name: str) -> bool:
        return bool(self.query("SELECT 1 FROM information_schema.tables WHERE table_name = ? "
                               "AND table_schema = ANY (current_schemas(false))", (name,)))

    def lock_pushes(self) -> None:
        # its own key: a push never waits for a receiver's migration, nor the reverse; released at commit
        self.execute("SELECT pg_advisory_xact_lock(?)", (0x6C616266,))


def _pg_words(exc: Exception) -> str:
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], dict):
        return str(args[0].get("M", args[0]))
    return str(exc) or type(exc).__name__


def connect(url: str, *, readonly: bool = False) -> Database:
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(url)
    if url.startswith("sqlite:///"):
        url = url[len("sqlite:///") - 1:]
    return SqliteDatabase(Path(url), readonly=readonly)
