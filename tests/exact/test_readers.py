"""Read-only readers meet a state DB between its creation and its migrations: "no data yet"."""
from __future__ import annotations

import json
import sqlite3

from core_helpers import instrument, labedge, write_config

from agent.config import load_config
from agent.demo import Layout, _rows
from agent.state.migrations import MIGRATIONS, apply_migrations
from agent.state.store import StateStore
from agent.status import build_status
from tray.app import TrayController


def _half_made(db, migrations) -> None:
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")  # what the agent does first, before its migrations
    if migrations is not None:
        apply_migrations(conn, migrations)
    conn.close()


def test_readers_between_creation_and_migration(tmp_path):
    cfg_path = write_config(tmp_path, [instrument(tmp_path)])
    cfg = load_config(cfg_path)
    for stage in (None, MIGRATIONS[:1], MIGRATIONS[:2]):  # created; part-migrated (an upgrade)
        if cfg.state_db.exists():
            for f in cfg.state_db.parent.glob("state.sqlite3*"):
                f.unlink()
        _half_made(cfg.state_db, stage)
        st = build_status(cfg)
        assert st["packages"]["queued"] == 0 and st["agent"]["running"] is False
        r = labedge("status", "--json", "-c", str(cfg_path))
        assert r.returncode == 3 and "Traceback" not in r.stderr, r.stderr
        assert json.loads(r.stdout)["packages"]["delivered"] == 0
        assert TrayController(cfg).state() is not None
        lay = Layout(tmp_path / "demo")
        _half_made(lay.state / "state.sqlite3", stage)
        assert _rows(lay) == []
        for f in (lay.state).glob("state.sqlite3*"):
            f.unlink()
    StateStore(cfg.state_db).close()  # the agent finishes: now the readers see the real (empty) queue
    assert build_status(cfg)["packages"]["queued"] == 0


def test_two_connections_migrating_at_once_do_not_fail(tmp_path):
    """The tray opens the DB read-write while the agent starts: both run the migrations."""
    import threading

    for i in range(10):
        db = tmp_path / f"state{i}.sqlite3"
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def migrate() -> None:
            conn = sqlite3.connect(db, isolation_level=None, timeout=30, check_same_thread=False)
            try:
                conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
                barrier.wait()
                apply_migrations(conn)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                conn.close()
        threads = [threading.Thread(target=migrate) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == [], errors
