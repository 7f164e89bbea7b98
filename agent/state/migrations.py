"""Named, transactional schema migrations for the agent's SQLite state.

Each migration runs inside one transaction together with the row that records it, so a crash
mid-migration leaves the database at the previous version, never half-migrated.
"""
from __future__ import annotations

import sqlite3
import time

MIGRATIONS: list[tuple[str, str]] = [
    ("0001_files_packages_health", """
        CREATE TABLE files (
            path TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            instrument_id TEXT NOT NULL,
            package_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            recorded_at REAL NOT NULL,
            PRIMARY KEY (path, size, mtime_ns)
        );
        CREATE INDEX files_by_package ON files(package_id);
        CREATE TABLE packages (
            id TEXT PRIMARY KEY,
            instrument_id TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'measurement',
            parent_id TEXT,
            state TEXT NOT NULL CHECK (state IN ('queued', 'uploading', 'delivered', 'failed')),
            path TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            n_files INTEGER NOT NULL,
            created_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            delivered_at REAL,
            translation TEXT,
            pairing TEXT
        );
        CREATE INDEX packages_by_state ON packages(state, id);
        CREATE TABLE health (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at REAL NOT NULL
        );
    """),
    # sample sheets (agent.sheets): saved sheets, the active one per instrument, and measurements held
    # until they get a sheet. Holds are keyed by their files' (path, size, mtime) fingerprint so the
    # catch-up scan re-finding the same unpackaged files after a restart does not add a second hold.
    ("0002_sheets", """
        CREATE TABLE sheets (
            id TEXT PRIMARY KEY,
            template TEXT NOT NULL,
            instrument_id TEXT,
            source TEXT NOT NULL,
            folder TEXT,
            file_path TEXT,
            file_size INTEGER,
            file_mtime_ns INTEGER,
            sheet_values TEXT NOT NULL,
            created_at REAL NOT NULL,
            activated_at REAL,
            closed_at REAL
        );
        CREATE INDEX sheets_active ON sheets(instrument_id, activated_at);
        CREATE INDEX sheets_by_folder ON sheets(folder);
        CREATE TABLE holds (
            fingerprint TEXT PRIMARY KEY,
            instrument_id TEXT NOT NULL,
            mkey TEXT NOT NULL,
            measurement TEXT NOT NULL,
            held_at REAL NOT NULL,
            settled_at REAL NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('held', 'released', 'gone')),
            sheet_id TEXT,
            resubmitted_at REAL,
            released_at REAL,
            outcome TEXT
        );
        CREATE INDEX holds_by_state ON holds(state, instrument_id);
    """),
    # A later version of a file supersedes an earlier package not yet delivered: that package never
    # leaves the PC. SQLite cannot widen a CHECK constraint in place, so the table is rebuilt (inside
    # the migration's one transaction). superseded_by names the package that replaced it.
    ("0003_superseded", """
        CREATE TABLE packages_v3 (
            id TEXT PRIMARY KEY,
            instrument_id TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'measurement',
            parent_id TEXT,
            state TEXT NOT NULL CHECK (state IN ('queued', 'uploading', 'delivered', 'failed', 'superseded')),
            path TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            n_files INTEGER NOT NULL,
            created_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            delivered_at REAL,
            translation TEXT,
            pairing TEXT,
            superseded_by TEXT
        );
        INSERT INTO packages_v3 (id, instrument_id, kind, parent_id, state, path, bytes, n_files, created_at,
                                 attempts, last_error, delivered_at, translation, pairing)
            SELECT id, instrument_id, kind, parent_id, state, path, bytes, n_files, created_at,
                   attempts, last_error, delivered_at, translation, pairing FROM packages;
        DROP TABLE packages;
        ALTER TABLE packages_v3 RENAME TO packages;
        CREATE INDEX packages_by_state ON packages(state, id)
    """),
    # remote commands (agent.fleet.commands): every signed command id handled, with its result, kept
    # until well past its expiry, so a replayed copy does nothing a second time.
    ("0004_fleet_commands", """
        CREATE TABLE commands (
            id TEXT PRIMARY KEY,
            action TEXT NOT NULL,
            signer TEXT NOT NULL,
            received_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            status TEXT NOT NULL,
            result TEXT NOT NULL
        );
        CREATE INDEX commands_by_expiry ON commands(expires_at);
    """),
]


class MigrationError(Exception):
    """The state database is newer than this agent, or a migration failed."""


def apply_migrations(conn: sqlite3.Connection, migrations: list[tuple[str, str]] | None = None) -> list[str]:
    """Apply pending migrations in order; return the names applied."""
    migrations = MIGRATIONS if migrations is None else migrations
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    known = {name for name, _ in migrations}
    unknown = done - known
    if unknown:
        raise MigrationError(f"state database has migrations this agent does not know: {sorted(unknown)}; "
                             "it was written by a newer labedge")
    applied = []
    for name, sql in migrations:
        if name in done:
            continue
        try:
            conn.execute("BEGIN IMMEDIATE")
            # another process (the tray, a second reader-writer) may have applied it meanwhile
            if conn.execute("SELECT 1 FROM _migrations WHERE name=?", (name,)).fetchone():
                conn.execute("COMMIT")
                continue
            for statement in filter(str.strip, sql.split(";")):
                conn.execute(statement)
            conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (name, time.time()))
            conn.execute("COMMIT")
        except Exception as exc:
            conn.execute("ROLLBACK")
            raise MigrationError(f"migration {name} failed: {exc}") from exc
        applied.append(name)
    return applied
