"""A measurement dropped in a watched folder arrives in the receiver's store, verified, exactly once."""
from __future__ import annotations

import hashlib
import os

from agent.config import load_config
from agent.package.verify import verify_package
from agent.pairing import UnpairedPairer
from agent.runner import Agent
from transport_helpers import (AgentProc, ReceiverProc, agent_config, assert_exactly_once, make_packages,
                                      stored, wait_for)


def test_watched_file_arrives_verified_and_status_says_delivered(tmp_path, broker, pki):
    store = tmp_path / "store"
    rx = ReceiverProc(tmp_path / "rx", broker, pki, store).start_connected()
    cfg_path = agent_config(tmp_path / "agent", broker.url, pki)
    cfg = load_config(cfg_path)
    # Pairing with sample sheets is tested elsewhere; here every measurement goes out unpaired at once.
    agent = Agent(cfg, pairer=UnpairedPairer(cfg.default_owner_id))
    agent.start()
    try:
        payload = os.urandom(3 * 1024 * 1024 + 12345)  # ~50 chunks of 64 KiB
        src = tmp_path / "agent" / "watch" / "scan-001.dat"
        src.write_bytes(payload)
        got = wait_for(lambda: stored(store), 20, "the package in the receiver's store")
        (pid, paths), = got.items()
        bag = paths[0]
        assert bag.parents[2] == store / "dev-01" and bag.parent.name == pid[4:6]  # <store>/<dev>/<yyyy>/<mm>/<id>
        assert verify_package(bag).ok
        raw = bag / "data" / "raw" / "scan-001.dat"
        assert hashlib.sha256(raw.read_bytes()).digest() == hashlib.sha256(payload).digest()
        wait_for(lambda: agent.store.counts()["delivered"] == 1, 30, "the agent to mark it delivered")
        # marked delivered first, then the spool copy is released (a crash in between is tidied by recovery)
        wait_for(lambda: not (agent.spool.packages / pid).exists(), 10, "delete_delivered to release the spool copy")
        # `labedge status` is another process reading what the agent flushes each second: wait for it.
        status = AgentProc(cfg_path).status
        st = wait_for(lambda: (s := status())["upload"]["recent"] and s, 15, "status to show the delivery")
        assert st["packages"]["delivered"] == 1 and st["packages"]["queued"] == 0
        assert st["upload"]["connected"] is True
        assert st["upload"]["recent"][-1]["result"] == "delivered"
    finally:
        assert agent.stop() == []
        rx.kill()
    assert src.read_bytes() == payload  # the instrument's file is never touched


def test_resent_package_is_acked_again_not_stored_twice(tmp_path, broker, pki):
    """Dedupe by package id: the agent forgets it was delivered (state reset), sends again, gets acked."""
    store = tmp_path / "store"
    rx = ReceiverProc(tmp_path / "rx", broker, pki, store).start_connected()
    cfg_path = agent_config(tmp_path / "agent", broker.url, pki, delete_delivered=False)
    expected = make_packages(cfg_path, [200_000, 5_000])
    agent = AgentProc(cfg_path).start()
    try:
        wait_for(lambda: agent.status()["packages"]["delivered"] == 2, 60, "two deliveries")
        agent.kill()
        from agent.state.store import StateStore
        st = StateStore(load_config(cfg_path, check_watch_folders=False).state_db)
        st.conn.execute("UPDATE packages SET state='queued'")
        st.close()
        agent.start()
        wait_for(lambda: agent.status()["packages"]["delivered"] == 2, 60, "re-acknowledged deliveries")
    finally:
        agent.kill()
        rx.kill()
    assert_exactly_once(store, expected)
    assert rx.text().count("stored dev-01/") == 2
