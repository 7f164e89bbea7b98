"""The receiver's store fills up mid-transfer: the device is told, keeps its package, and it arrives
exactly once when space is freed. The store is a real, small tmpfs, so the ENOSPC is the kernel's."""
from __future__ import annotations

from pathlib import Path

import pytest
from diskfull import fill, mount_tmpfs, unmount

from testpaths import in_ci
from transport_helpers import (AgentProc, ReceiverProc, agent_config, assert_exactly_once, db_counts, make_packages,
                               partial_chunks, upload_facts, wait_for)

PAYLOAD = 3 * 1024 * 1024


def _mount_tmpfs(where: Path, size: str) -> None:
    if not mount_tmpfs(where, size):
        if in_ci():
            pytest.fail("a real full disk needs root to mount a small tmpfs")
        pytest.skip("mounting a tmpfs needs root")


def _receiver_problem(config: Path) -> str | None:
    st = AgentProc(config).status()
    return next((p["message"] for p in st.get("problems", []) if p["key"] == "upload:receiver"), None)


@pytest.mark.parametrize("when", ["mid-transfer", "at-offer"])
def test_full_receiver_store_makes_the_device_wait_and_lose_nothing(tmp_path, broker, pki, when):
    store = tmp_path / "store"
    _mount_tmpfs(store, "8m")
    try:
        # "mid-transfer": the disk fills while chunks arrive (another program writes to it), so the kernel's
        # ENOSPC hits a chunk write. "at-offer": the receiver sees too little free space for the package
        # and answers busy before any chunk is sent.
        rx = ReceiverProc(tmp_path / "rx", broker, pki, store, min_free_bytes=1024 * 1024, busy_retry_seconds=1)
        config = agent_config(tmp_path / "agent", broker.url, pki, rate_limit=1024 * 1024)
        expected = make_packages(config, [PAYLOAD])
        pid = next(iter(expected))
        ballast = None if when == "mid-transfer" else fill(store, 2 * 1024 * 1024)
        agent = AgentProc(config)
        rx.start_connected()
        agent.start()
        try:
            if ballast is None:
                wait_for(lambda: partial_chunks(store, pid) >= 8, 60, "8 chunks at the receiver")
                ballast = fill(store, 0)
            msg = wait_for(lambda: _receiver_problem(config), 60, "the agent's status to say the receiver is busy")
            assert "receiver" in msg and "Nothing is lost" in msg
            if when == "at-offer":
                assert "MiB free" in msg, msg
            else:
                # The device may already have offered again (busy_retry_seconds=1) and been told the store
                # has no room at the offer; the chunk write's ENOSPC must still have been the first cause.
                assert "No space left on device" in msg or " free " in msg, msg
                wait_for(lambda: "No space left on device" in rx.text(), 30, "the receiver's log to name ENOSPC")
            wait_for(lambda: "the device was told to retry" in rx.text(), 30, "the receiver's log to say why")
            counts = db_counts(config)
            assert counts["uploading"] == 1 and counts["delivered"] == counts["failed"] == 0, counts
            busy = wait_for(lambda: [t for t in upload_facts(config).get("transfers", []) if t["receiver_busy"]],
                            30, "the transfer to show the receiver busy")
            assert busy[0]["package_id"] == pid and busy[0]["state"] == "receiver busy", busy
            assert rx.alive() and agent.alive(), "both sides keep running"

            ballast.unlink()  # the facility frees space
            wait_for(lambda: db_counts(config).get("delivered") == 1, 90, "delivery once space is free")
            wait_for(lambda: _receiver_problem(config) is None, 30, "the problem to clear from the status")
            assert_exactly_once(store, expected)
        finally:
            agent.kill()
            rx.kill()
    finally:
        unmount(store)
