"""Tray: state wording from a real agent's status, and pause / retry reaching the running agent."""
from __future__ import annotations

import time

from agent.runner import Agent
from tray.app import TrayController
from tray.icons import COLOURS, icon_image
from tray.state import ERROR, OFFLINE, PAUSED, UP_TO_DATE, WORKING, tray_state


def wait_for(cond, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_states_follow_the_running_agent(cfg, tmp_path):
    ctl = TrayController(cfg, opener=lambda url: None)
    assert ctl.state().level == ERROR and "not running" in ctl.state().title
    agent = Agent(cfg)
    agent.start()
    try:
        state = wait_for(lambda: (s := ctl.state()).level != ERROR and s, what="agent heartbeat")
        assert state.level == OFFLINE and "offline" in state.title

        ctl.set_paused(True)
        wait_for(lambda: agent.health.get("user_paused"), what="pause to reach the agent")
        assert wait_for(lambda: ctl.state().level == PAUSED, what="paused state")
        (tmp_path / "watch" / "a.csv").write_text("1,2\n")
        wait_for(lambda: agent.pipeline.pending() == 1, what="measurement to wait while paused")
        assert agent.store.counts()["queued"] == 0, "nothing may be packaged while paused"

        ctl.set_paused(False)
        wait_for(lambda: agent.store.counts()["queued"] == 1, what="package after resume")
    finally:
        assert agent.stop() == []


def test_retry_now_requeues_failed_packages(cfg, tmp_path):
    agent = Agent(cfg)
    agent.start()
    try:
        (tmp_path / "watch" / "b.csv").write_text("3,4\n")
        pkg = wait_for(lambda: agent.store.next_queued(), what="a package")
        agent.store.set_state(pkg.id, "failed", "the broker refused this device (not authorized)")
        ctl = TrayController(cfg)
        wait_for(lambda: ctl.state().level == ERROR, what="error state for a failed package")
        assert "could not be uploaded" in ctl.state().title
        assert "not authorized" in ctl.state().tooltip
        ctl.retry_now()
        wait_for(lambda: agent.store.counts()["queued"] == 1, what="retry to requeue")
    finally:
        assert agent.stop() == []


def test_state_wording_covers_every_level():
    base = {"agent": {"running": True, "mode": "online"}, "packages": {"queued": 0, "uploading": 0,
            "delivered": 3, "failed": 0}, "intake": {"paused": False}, "problems": []}
    assert tray_state(base).level == UP_TO_DATE
    assert tray_state({**base, "packages": {**base["packages"], "uploading": 1}}).level == WORKING
    assert tray_state({**base, "upload": {"connected": False, "last_error": "cannot reach b:8883"}}).lines[0] \
        == "cannot reach b:8883"
    full = tray_state({**base, "intake": {"paused": True, "reason": "spool full: 50 GiB of 50 GiB"}})
    assert full.level == "attention" and "spool full" in full.tooltip
    assert len(tray_state({**base, "failed": [{"error": "x" * 500}], "packages": {**base["packages"],
               "failed": 2}}).tooltip) <= 127
    busy = tray_state({**base, "packages": {**base["packages"], "uploading": 1}, "problems": [
        {"key": "upload:receiver", "kind": "warning", "message": "uploads wait: the receiver has 1.0 MiB free"}]})
    assert busy.level == "attention" and "facility's receiver" in busy.title and "1.0 MiB free" in busy.lines[1]


def test_icons_have_a_distinct_colour_per_level():
    seen = set()
    for level in COLOURS:
        img = icon_image(level)
        assert img.size == (64, 64)
        seen.add(img.getpixel((6, 32))[:3])
    assert len(seen) >= 5
