"""Named catalog migrations, applied in order, each in one transaction with its record in
``_migrations`` (as the agent's state DB does). Never edit a shipped migration: add a new one."""
from __future__ import annotations

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
    # The remote-config push history (facility/remote/history.py), shared by every administrator of the
    # catalog. Ids and versions are allocated by the tools under Database.lock_pushes (no SERIAL or
    # AUTOINCREMENT: the two engines differ there, and an imported history keeps its own order).
    ("0002_remote_config_history", [
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


def migrate(db: Database) -> list[str]:
    """Apply what is missing; returns the names applied. Refuses a catalog from a newer labedge."""
    with db.transaction():
        db.lock_migrations()
        db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {r[0] for r in db.query("SELECT name FROM _migrations")}
    known = {name for name, _ in MIGRATIONS}
    unknown = sorted(done - known)
    if unknown:
        raise CatalogError(f"the catalog was written by a newer labedge (migrations {', '.join(unknown)}); "
                           "upgrade this receiver or fleet tool")
    applied = []
    for name, statements in MIGRATIONS:
        if name in done:
            continue
        with db.transaction():
            db.lock_migrations()
            if db.query("SELECT 1 FROM _migrations WHERE name=?", (name,)):
                continue  # another receiver applied it while we waited for the lock
            for sql in statements:
                db.execute(sql)
            db.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, CURRENT_TIMESTAMP)", (name,))
        applied.append(name)
    return applied


def check_readable(db: Database) -> None:
    """For readers: the catalog has every migration this labedge knows, and none it does not."""
    try:
        done = {r[0] for r in db.query("SELECT name FROM _migrations")}
    except Exception:  # noqa: BLE001 - no table yet: the receiver has not prepared it
        raise CatalogError("the catalog is not prepared yet (start the receiver once)") from None
    known = {name for name, _ in MIGRATIONS}
    if done - known:
        raise CatalogError(f"the catalog was written by a newer labedge (migrations "
                           f"{', '.join(sorted(done - known))}); upgrade this fleet tool")
    if known - done:
        raise CatalogError(f"the catalog lacks migrations {', '.join(sorted(known - done))}: upgrade or "
                           "restart the receiver (or run `labedge fleet config status`), which applies them")
