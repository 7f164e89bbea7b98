"""The catalog on real SQLite and real PostgreSQL (a throwaway database per test): named
migrations, each package recorded once even from two connections at once, status transitions."""
from __future__ import annotations

import threading

import pytest

from facility.catalog import CatalogError, open_catalog
from facility.catalog.bag_facts import PackageFacts, read_facts
from facility.catalog.migrations import MIGRATIONS

FACTS = PackageFacts("xrd-1", "measurement", "paired", "S-17", "P2026-1", "ok", None, 7, 1234)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        yield str(tmp_path / "store" / ".catalog.sqlite3")
    else:
        yield request.getfixturevalue("pg_url")


def test_migrations_are_named_and_applied_once(url):
    c = open_catalog(url)
    names = [r[0] for r in c.db.query("SELECT name FROM _migrations ORDER BY name")]
    assert names == [n for n, _ in MIGRATIONS]
    c.close()
    c = open_catalog(url)  # a second open applies nothing again
    assert len(c.db.query("SELECT name FROM _migrations")) == len(MIGRATIONS)
    with c.db.transaction():
        c.db.execute("INSERT INTO _migrations (name, applied_at) VALUES ('9999_from_the_future', 'x')")
    c.close()
    with pytest.raises(CatalogError, match="newer labedge.*9999_from_the_future"):
        open_catalog(url)


def test_each_package_once_from_two_writers_at_once(url):
    a, b = open_catalog(url), open_catalog(url)
    rows = [("dev-01", f"20260101T0000{i:02d}Z-abcd", FACTS, 100.0 + i, "r") for i in range(40)]
    new: list[int] = []

    def write(cat, name):
        new.append(cat.record_packages([(d, p, f, t, name) for d, p, f, t, _ in rows]))

    threads = [threading.Thread(target=write, args=(cat, n)) for cat, n in ((a, "ra"), (b, "rb"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(new) == 40, new  # every row is new exactly once, whichever writer got it
    assert a.count_packages() == 40
    got = a.packages("dev-01", limit=100)
    assert len({p["package_id"] for p in got}) == 40
    assert got[0]["sample"] == "S-17" and got[0]["proposal"] == "P2026-1" and got[0]["bytes"] == 1234
    a.close()
    b.close()


def test_status_transitions_and_last_seen(url):
    c = open_catalog(url)
    on = {"v": 1, "device": "dev-01", "online": True, "sent_at": 1.0}
    c.record_statuses([("dev-01", on, 10.0), ("dev-01", on, 70.0)])
    c.record_statuses([("dev-01", {"v": 1, "device": "dev-01", "online": False, "reason": "connection lost"}, 95.0)])
    (d,) = c.devices()
    assert (d["online"], d["last_seen"], d["offline_since"], d["statuses"]) == (False, 70.0, 95.0, 3)
    ev = c.events("dev-01")
    assert [(e["online"], e["at"]) for e in ev] == [(False, 95.0), (True, 10.0)]
    assert ev[0]["reason"] == "connection lost"
    c.record_statuses([("dev-01", on, 120.0)])
    (d,) = c.devices()
    assert (d["online"], d["last_seen"], d["offline_since"]) == (True, 120.0, None)
    # one batch with a drop and a return in it: folded, but both changes are events
    c.record_statuses([("dev-01", {"v": 1, "device": "dev-01", "online": False, "reason": "stopped"}, 130.0),
                       ("dev-01", on, 140.0)])
    (d,) = c.devices()
    assert (d["online"], d["last_seen"], d["statuses"]) == (True, 140.0, 6)
    assert [(e["online"], e["at"]) for e in c.events("dev-01")][:2] == [(True, 140.0), (False, 130.0)]
    c.close()


def test_bag_facts_are_bounded_and_tolerant(tmp_path):
    bag = tmp_path / "bag"
    (bag / "data" / "labedge").mkdir(parents=True)
    (bag / "data" / "invoice").mkdir(parents=True)
    (bag / "data" / "labedge" / "provenance.json").write_text(
        '{"instrument_id": "' + "x" * 5000 + '", "pairing": {"status": "unpaired"}, '
        '"translation": {"ok": false, "translator": "rigaku", "error": "bad header"}}')
    (bag / "data" / "invoice" / "invoice.json").write_text("{not json")
    f = read_facts(bag, files=3, nbytes=10)
    assert len(f.instrument) == 200 and f.pairing == "unpaired" and f.sample is None
    assert (f.translation, f.translation_error) == ("failed", "bad header")


def test_unreachable_postgresql_is_one_sentence():
    with pytest.raises(CatalogError, match=r"catalog postgresql://postgres:\*\*\*@127.0.0.1:1/x: cannot connect"):
        open_catalog("postgresql://postgres:secret@127.0.0.1:1/x")


def test_receiver_catalog_url_is_checked(tmp_path):
    from config.validation import ConfigError
    from facility.receiver_config import parse_receiver_config
    base = {"broker": "mqtts://b:8883", "ca_file": "ca.pem", "cert_file": "c.pem", "key_file": "k.pem",
            "store_dir": "store"}
    with pytest.raises(ConfigError, match="catalog_url: 'mysql://db/x' is not allowed"):
        parse_receiver_config({**base, "catalog_url": "mysql://db/x"}, source=tmp_path / "receiver.toml")
    for name in ("ca.pem", "c.pem", "k.pem"):
        (tmp_path / name).write_text("x")
    cfg = parse_receiver_config({**base, "client_id": "r1"}, source=tmp_path / "receiver.toml")
    assert cfg.catalog == str(tmp_path.resolve() / "store" / ".catalog.sqlite3")
    cfg = parse_receiver_config({**base, "client_id": "r1", "catalog_url": "cat.db"}, source=tmp_path / "r.toml")
    assert cfg.catalog == str(tmp_path.resolve() / "cat.db")


def test_fleet_tools_open_it_read_only(url, tmp_path):
    if "://" not in url:
        with pytest.raises(CatalogError, match="cannot open"):
            open_catalog(url, readonly=True)          # not there yet: a reader never creates it
        assert not (tmp_path / "store" / ".catalog.sqlite3").exists()
    else:
        with pytest.raises(CatalogError, match="not prepared yet"):
            open_catalog(url, readonly=True)
    w = open_catalog(url)
    w.record_packages([("dev-01", "20260101T000000000Z-0000abcd", FACTS, 1.0, "r")])
    r = open_catalog(url, readonly=True)
    assert r.count_packages() == 1
    if "://" not in url:
        import sqlite3
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            r.record_packages([("dev-01", "20260101T000000001Z-0000abcd", FACTS, 1.0, "r")])
    r.close()
    w.close()
