"""Named catalog migrations, applied in order, each in one transaction with its record in its
ledger table (as the agent's state DB does). Never edit a shipped migration: add a new one.

Two ledgers, one per writer, because a writer refuses a catalog that holds migrations it does not
know (it could misread tables a newer labedge changed): the receiver's tables (``_migrations``,
packages and devices) and the remote-config history (``_config_migrations``, written by the
administrators' ``labedge fleet config`` tools). Were they one list, upgrading an administrator's
tools would make every older receiver refuse the catalog at its next start, and uploads would stop
facility-wide until the receivers were upgraded too.
"""
from __future__ import annotations

from dataclasses import dataclass

from facility.catalog.db import CatalogError, Database

MIGRATIONS: list[tuple[str, list[str]]] = [
    ("0001_packages_and_devices", [
        """CREATE TABLE packages (
            device TEXT NOT NULL, package_id TEXT NOT NULL, instrument TEXT, kind TEXT,
            stored_at DOUBLE PRECISION NOT NULL, bytes BIGINT NOT NULL, files INTEGER NOT NULL,
            pairing TEXT, sample TEXT, proposal TEXT, translation TEXT, translation_error TEXT,
            receiver TEXT, PRIMARY KEY (device, package_id))""",
        "CREATE INDEX packages_by_device_time ON packages (device, stored_at)",
        """CREATE TABLE devices (
            device TEXT PRIMARY KEY, online INTEGER NOT NULL, status TEXT NOT NULL,
            received_at DOUBLE PRECISION NOT NULL, last_seen DOUBLE PRECISION,
            offline_since DOUBLE PRECISION, first_seen DOUBLE PRECISION NOT NULL, statuses BIGINT NOT NULL)""",
        """CREATE TABLE device_events (
            device TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, online INTEGER NOT NULL, reason TEXT)""",
        "CREATE INDEX device_events_by_device ON device_events (device, at)",
    ]),
]


CONFIG_HISTORY_MIGRATIONS: list[tuple[str, list[str]]] = [
    # The remote-config push history (facility/remote/history.py), shared by every administrator of the
    # catalog. Ids and versions are allocated by the tools under Database.lock_pushes (no SERIAL or
    # AUTOINCREMENT: the two engines differ there, and an imported history keeps its own order).
    ("0001_remote_config_history", [
        """CREATE TABLE config_pushes (
            id BIGINT PRIMARY KEY, version BIGINT NOT NULL, signer TEXT NOT NULL, key_id TEXT NOT NULL,
            targets TEXT NOT NULL, fragment TEXT NOT NULL, document TEXT NOT NULL,
            pushed_at DOUBLE PRECISION NOT NULL, state TEXT NOT NULL, note TEXT, host TEXT,
            imported_from TEXT)""",
        "CREATE INDEX config_pushes_by_version ON config_pushes (version)",
        """CREATE TABLE config_results (
            push_id BIGINT NOT NULL REFERENCES config_pushes (id), device TEXT NOT NULL, version BIGINT NOT NULL,
            state TEXT NOT NULL, reason TEXT, at DOUBLE PRECISION NOT NULL, PRIMARY KEY (push_id, device))""",
        """CREATE TABLE config_imports (
            digest TEXT PRIMARY KEY, source TEXT NOT NULL, pushes BIGINT NOT NULL,
            imported_at DOUBLE PRECISION NOT NULL)""",
    ]),
]


@dataclass(frozen=True)
class Ledger:
    table: str
    migrations: list[tuple[str, list[str]]]
    #: who applies them, for "the catalog lacks migrations ...: <who> applies them"
    applier: str


RECEIVER = Ledger("_migrations", MIGRATIONS, "upgrade or restart the receiver, which applies them")
CONFIG_HISTORY = Ledger("_config_migrations", CONFIG_HISTORY_MIGRATIONS,
                        "run `labedge fleet config status` once, which applies them")


def migrate(db: Database, ledger: Ledger = RECEIVER) -> list[str]:
    """Apply what is missing of ``ledger``; returns the names applied. Refuses a catalog in which a
    newer labedge applied migrations of that ledger (the other ledger is not this writer's concern)."""
    with db.transaction():
        db.lock_migrations()
        db.execute(f"CREATE TABLE IF NOT EXISTS {ledger.table} (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {r[0] for r in db.query(f"SELECT name FROM {ledger.table}")}
    known = {name for name, _ in ledger.migrations}
    unknown = sorted(done - known)
    if unknown:
        raise CatalogError(f"the catalog was written by a newer labedge (migrations {', '.join(unknown)} in "
                           f"{ledger.table}); upgrade this receiver or fleet tool")
    applied = []
    for name, statements in ledger.migrations:
        if name in done:
            continue
        with db.transaction():
            db.lock_migrations()
            if db.query(f"SELECT 1 FROM {ledger.table} WHERE name=?", (name,)):
                continue  # another receiver applied it while we waited for the lock
            for sql in statements:
                db.execute(sql)
            db.execute(f"INSERT INTO {ledger.table} (name, applied_at) VALUES (?, CURRENT_TIMESTAMP)", (name,))
        applied.append(name)
    return applied


def ledger_status(db: Database, ledger: Ledger) -> tuple[str, list[str]]:
    """For a reader that can live without ``ledger``'s tables (the dashboard's push history):
    ("absent", []) no ledger yet, ("newer", names unknown here), ("lacking", names not applied), ("ok", [])."""
    if not db.has_table(ledger.table):
        return "absent", []
    done = {r[0] for r in db.query(f"SELECT name FROM {ledger.table}")}
    known = {name for name, _ in ledger.migrations}
    if done - known:
        return "newer", sorted(done - known)
    if known - done:
        return "lacking", sorted(known - done)
    return "ok", []


def check_readable(db: Database, ledger: Ledger = RECEIVER) -> None:
    """For readers: the catalog has every migration of ``ledger`` this labedge knows, and none it does not."""
    try:
        done = {r[0] for r in db.query(f"SELECT name FROM {ledger.table}")}
    except Exception:  # noqa: BLE001 - no table yet: the receiver has not prepared it
        raise CatalogError("the catalog is not prepared yet (start the receiver once)") from None
    known = {name for name, _ in ledger.migrations}
    if done - known:
        raise CatalogError(f"the catalog was written by a newer labedge (migrations "
                           f"{', '.join(sorted(done - known))}); upgrade this fleet tool")
    if known - done:
        raise CatalogError(f"the catalog lacks migrations {', '.join(sorted(known - done))}: {ledger.applier}")
