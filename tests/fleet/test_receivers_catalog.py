"""Two receivers in one share group, one shared store, ONE PostgreSQL catalog: every package is
recorded once (also when the device offers them all again), and the device's status is recorded."""
from __future__ import annotations

from transport_helpers import (RECEIVERS, AgentProc, ReceiverProc, agent_config, assert_exactly_once, db_counts,
                               make_packages, wait_for)

from agent.config import load_config
from agent.state.store import StateStore
from facility.catalog import open_catalog

N = 10


def test_two_receivers_one_postgresql_catalog(tmp_path, broker, pki, pg_url):
    store = tmp_path / "store"
    recv = [ReceiverProc(tmp_path / "r", broker, pki, store, name=n, catalog_url=pg_url).start_connected()
            for n in RECEIVERS]
    cfg_path = agent_config(tmp_path / "a", broker.url, pki, parallel=4, delete_delivered=False, status_interval=2)
    expected = make_packages(cfg_path, [3000 + i for i in range(N)])
    agent = AgentProc(cfg_path).start()
    cat = open_catalog(pg_url)
    try:
        wait_for(lambda: db_counts(cfg_path).get("delivered") == N, 45, f"{N} packages delivered")
        assert_exactly_once(store, expected)
        wait_for(lambda: cat.count_packages() == N, 15, f"{N} catalog rows")
        # the device offers every package again (e.g. it lost its state): acked, recorded again -> still once
        cfg = load_config(cfg_path, check_watch_folders=False)
        st = StateStore(cfg.state_db)
        for pid in expected:
            st.set_state(pid, "queued")
        st.close()
        wait_for(lambda: db_counts(cfg_path).get("delivered") == N, 45, "the re-offered packages acked")
        rows = cat.packages("dev-01", limit=100)
        assert sorted(r["package_id"] for r in rows) == sorted(expected)
        assert cat.count_packages() == N
        assert {r["receiver"] for r in rows} <= set(RECEIVERS)
        assert all(r["files"] == 8 and r["bytes"] > 3000 for r in rows), rows[0]  # 4 data + 4 tag files
        assert {r["sample"] for r in rows} == {f"p{i}" for i in range(N)}
        # and the device's status, from whichever receiver the share group gave it to
        dev = wait_for(lambda: [d for d in cat.devices() if d["device"] == "dev-01" and d["online"]], 10,
                       "dev-01's status in the catalog")[0]
        assert dev["status"]["queue"]["delivered"] >= 0 and dev["last_seen"] is not None
    finally:
        agent.kill()
        for r in recv:
            r.kill()
        cat.close()
