"""The fleet view's reading of the push history (facility/fleet/pushes.py) on a real SQLite catalog:
no history yet, a history ledger from a newer labedge, and the one assessment that makes a refused
push a reason for attention (CLI and dashboard alike)."""
from __future__ import annotations

import time

from fleet_helpers import write_fleet_toml

from facility.catalog import open_catalog
from facility.fleet.data import FleetData
from facility.fleet.view import assess, format_line
from facility.fleet_config import load_fleet_config
from facility.remote.history import History, history_catalog


def _doc(**config):
    return {"v": 1, "device": "pc-1", "online": True, "sent_at": time.time(), "interval": 60, "config": config}


def test_a_refused_push_needs_attention_and_says_why():
    now = time.time()
    ok = assess("pc-1", _doc(state="applied", applied_version=6), None, now=now, default_interval=60)
    assert ok.state == "ok"
    bad = assess("pc-1", _doc(state="applied", applied_version=6), None, now=now, default_interval=60,
                 last_push={"push_id": 3, "version": 7, "state": "refused", "reason": "stale_version: 7 <= 7"})
    assert bad.state == "warning" and bad.reasons[0]["code"] == "push_refused"
    assert bad.why == "refused config version 7: stale_version: 7 <= 7"
    assert "refused config version 7: stale_version" in format_line(bad, now)   # fleet status says it too
    # no answer in the history yet, but the device's status says what it did
    late = assess("pc-1", _doc(state="rolled_back", applied_version=6, event_version=7, error="trial: no broker"),
                  None, now=now, default_interval=60,
                  last_push={"push_id": 3, "version": 7, "state": "sent", "reason": ""})
    assert late.last_push["state"] == "rolled_back" and late.last_push["reported"] is True
    assert late.why == "rolled back config version 7: trial: no broker"


def test_no_history_and_a_newer_history_are_said_in_words(tmp_path, pki):
    catalog = tmp_path / "store" / ".catalog.sqlite3"
    cat = open_catalog(str(catalog))
    cat.record_statuses([("pc-1", _doc(state="applied", applied_version=1), time.time())])
    cat.close()
    broker = type("B", (), {"url": "mqtts://127.0.0.1:1"})()   # never contacted: FleetData reads the catalog
    cfg = load_fleet_config(write_fleet_toml(tmp_path / "admin", broker, pki, catalog_url=str(catalog)))
    data = FleetData(cfg)
    try:
        view = data.config_view({})
        assert view["pushes"] == [] and view["history_note"]["code"] == "absent"
        assert view["history_note"]["text"] == "no configuration pushed yet"
        assert [d.state for d in data.lines({})] == ["ok"]
        h = History(history_catalog(str(catalog)), tmp_path / "audit.jsonl")
        pid, v, _ = h.reserve_push(signer="a", key_id="k", targets={"devices": ["pc-1"]}, fragment="x = 1\n",
                                   sign=lambda _v: b"{}")
        h.result(pid, "pc-1", v, "refused", "bad_signature")
        assert [p["id"] for p in data.config_view({})["pushes"]] == [pid]
        assert [d.state for d in data.lines({})] == ["warning"]
        # a newer labedge's tools added a migration: said in words, the device list still answers
        with h.db.transaction():
            h.db.execute("INSERT INTO _config_migrations (name, applied_at) VALUES ('0099_future', 'x')")
        h.close()
        view = data.config_view({})
        assert view["pushes"] == [] and view["history_note"]["code"] == "newer"
        assert "newer labedge" in view["history_note"]["text"] and "0099_future" in view["history_note"]["text"]
        assert data.device_detail("pc-1")["history_note"]["code"] == "newer"
        lines = data.lines({})
        assert [d.state for d in lines] == ["ok"] and lines[0].last_push is None
    finally:
        data.close()


def test_the_history_ledger_is_looked_up_without_spoiling_a_postgresql_connection(pg_url, tmp_path):
    from facility.catalog.migrations import CONFIG_HISTORY, ledger_status
    from facility.fleet import pushes
    cat = open_catalog(pg_url)
    ro = open_catalog(pg_url, readonly=True)
    try:
        assert ledger_status(ro.db, CONFIG_HISTORY) == ("absent", [])
        assert ro.devices() == []   # the connection still answers (no failed query in its transaction)
        History(history_catalog(pg_url), tmp_path / "audit.jsonl").close()   # the tables, no push yet
        assert pushes.availability(ro.db) is None and pushes.recent(ro.db, {}) == []
        assert pushes.last_results(ro.db) == {}
    finally:
        ro.close()
        cat.close()
