"""The receiver's catalog writer keeps what it could not write while the database was away, and
writes it once the database is there; an unreadable status is counted and never recorded."""
from __future__ import annotations

import pytest
from fleet_helpers import PG, pg_or_skip
from transport_helpers import wait_for

from facility.catalog import open_catalog
from facility.catalog.writer import CatalogWriter
from wire import status as S


def test_database_away_then_back_loses_nothing(tmp_path, monkeypatch):
    import pg8000.dbapi

    import facility.catalog.writer as W
    monkeypatch.setattr(W, "RETRY_SECONDS", 0.5)
    db = pg_or_skip()  # made here only for its name; dropped, so the catalog is away at first
    db.drop()
    bag = tmp_path / "bag"
    (bag / "data").mkdir(parents=True)
    w = CatalogWriter(db.url, "labedge-receiver")
    w.start()
    try:
        w.package_stored("dev-01", "20260101T000000000Z-0000abcd", bag, 8, 4096)
        w.status("dev-01", S.encode({"v": 1, "device": "dev-01", "online": True, "sent_at": 1.0}))
        w.status("dev-01", b'{"v": 2, "device": "dev-01", "online": true}')
        wait_for(lambda: w.last_error, 10, "the writer to notice the database is away")
        assert "does not exist" in w.last_error and w.backlog() >= 2
        conn = pg8000.dbapi.connect(database="postgres", **PG)
        conn.autocommit = True
        conn.cursor().execute(f"CREATE DATABASE {db.name}")
        conn.close()
        wait_for(lambda: w.written["new_packages"] == 1 and w.written["statuses"] == 1, 15,
                 "the kept batch written")
        assert w.written["invalid_statuses"] == 1 and w.last_error is None
        c = open_catalog(db.url)
        assert [p["package_id"] for p in c.packages()] == ["20260101T000000000Z-0000abcd"]
        assert [d["device"] for d in c.devices()] == ["dev-01"]
        c.close()
    finally:
        w.stop()
        db.drop()


@pytest.mark.parametrize("payload", [b"x" * (S.MAX_STATUS_BYTES + 1), b"[]", b'{"v":1,"device":"dev-02","online":true}'])
def test_bad_statuses_are_counted_not_recorded(tmp_path, payload):
    w = CatalogWriter(str(tmp_path / ".catalog.sqlite3"), "r")
    w.start()
    try:
        w.status("dev-01", payload)
        wait_for(lambda: w.written["invalid_statuses"] == 1, 10, "the bad status counted")
        c = open_catalog(str(tmp_path / ".catalog.sqlite3"))
        assert c.devices() == []
        c.close()
    finally:
        w.stop()
