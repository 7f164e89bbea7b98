"""Tray: state wording from a real agent's status, and pause / retry reaching the running agent."""
from __future__ import annotations

import itertools
import time

from PIL import Image

from agent.runner import Agent
from tray.app import TrayController
from tray.icons import COLOURS, icon_image
from tray.state import ATTENTION, ERROR, OFFLINE, PAUSED, STATES, UP_TO_DATE, WORKING, tray_state


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
        assert state.level == OFFLINE and state.title == "this PC keeps measurements locally; it is not set up to upload"
        assert "[upload]" not in state.tooltip and state.tooltip.startswith("labedge: offline — this PC keeps")

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
        assert ctl.state().title == "1 package could not be uploaded"
        assert "not authorized" in ctl.state().lines[1]  # the detail is in the menu; the tooltip stays short
        ctl.retry_now()
        wait_for(lambda: agent.store.counts()["queued"] == 1, what="retry to requeue")
    finally:
        assert agent.stop() == []


def test_state_wording_covers_every_level():
    base = {"agent": {"running": True, "mode": "online"}, "packages": {"queued": 0, "uploading": 0,
            "delivered": 3, "failed": 0}, "intake": {"paused": False}, "problems": [], "upload": {"connected": True}}
    assert tray_state(base).level == UP_TO_DATE
    assert tray_state({**base, "packages": {**base["packages"], "uploading": 1}}).level == WORKING
    down = tray_state({**base, "upload": {"connected": False, "last_error": "cannot reach b:8883"}})
    assert down.level == OFFLINE and down.title == "will upload when the facility is reachable"
    assert down.lines[1] == "cannot reach b:8883" and "8883" not in down.tooltip
    # a revoked (or expired, or foreign) certificate never gets better by waiting: the user must act
    revoked = tray_state({**base, "upload": {"connected": False, "last_error": (
        "the broker rejected this device's certificate (CN=pc, /c/pc.pem): it is not signed by the CA the broker "
        "trusts, or was revoked")}})
    assert revoked.level == ATTENTION and "certificate" in revoked.title and "tell the facility" in revoked.lines[-2]
    full = tray_state({**base, "intake": {"paused": True, "reason": "spool full: 50 GiB of 50 GiB"}})
    assert full.level == ATTENTION and "spool full" in full.lines[1]
    long = tray_state({**base, "failed": [{"error": "x" * 500}], "packages": {**base["packages"], "failed": 2}})
    assert len(long.tooltip) <= 127
    ja = tray_state({**base, "packages": {**base["packages"], "failed": 2}, "failed": [{"error": "e"}]}, lang="ja")
    assert ja.tooltip.startswith("labedge: エラー — 2 件のパッケージを送信できませんでした")
    busy = tray_state({**base, "packages": {**base["packages"], "uploading": 1}, "problems": [
        {"key": "upload:receiver", "kind": "warning", "message": "uploads wait: the receiver has 1.0 MiB free"}]})
    assert busy.level == OFFLINE and "cannot take data" in busy.title and "1.0 MiB free" in busy.lines[1]


def test_a_long_reason_is_cut_at_a_word_in_the_tooltip():
    name = "sample-" + "verylongname" * 3
    st = {"agent": {"running": True}, "packages": {}, "sheets": {"held": 3, "held_list": [
        {"hold": "h", "name": name + " " + "word " * 30}]}}
    tip = tray_state(st).tooltip
    assert len(tip) <= 127 and "…" in tip
    full = f"labedge: needs attention — 3 measurements need a sample sheet ({name} {'word ' * 30})"
    for word in tip.replace("…", " ").replace("(", " ").split():
        assert word in full.replace("(", " ").split(), f"{word!r} was cut mid-word in {tip!r}"


def _grey16(level: str, bg: tuple[int, int, int]) -> list[int]:
    img = Image.new("RGBA", (16, 16), (*bg, 255))
    img.alpha_composite(icon_image(level, 16))
    return list(img.convert("L").tobytes())


def test_the_six_icons_differ_at_16_px_in_greyscale():
    """Shape, not colour alone: every pair differs clearly at 16 px once colour is gone, on a light, a mid
    and a dark panel (mean grey difference per pixel, 0-255)."""
    assert set(COLOURS) == set(STATES)
    for bg in ((255, 255, 255), (128, 128, 128), (30, 30, 30)):
        for a, b in itertools.combinations(STATES, 2):
            ga, gb = _grey16(a, bg), _grey16(b, bg)
            diff = sum(abs(x - y) for x, y in zip(ga, gb)) / len(ga)
            assert diff >= 15, f"{a!r} and {b!r} look alike at 16 px in grey on {bg}: {diff:.1f}"
    assert icon_image(UP_TO_DATE).size == (64, 64)


def test_a_new_held_measurement_raises_one_notification(cfg, tmp_path):
    """The tray's desktop notification (pystray notify, where the platform has one): once per newly held
    measurement, not again for the same one, and not for what was already held when the tray started."""
    from agent.config import load_config
    text = cfg.source.read_text(encoding="utf-8").replace("hold_seconds = 0", 'unpaired_policy = "hold"')
    cfg.source.write_text(text, encoding="utf-8")
    cfg = load_config(cfg.source)
    agent = Agent(cfg)
    agent.start()
    try:
        ctl = TrayController(cfg, opener=lambda url: None, lang="en")
        (tmp_path / "watch" / "old.csv").write_text("1\n")
        wait_for(lambda: ctl.status()["sheets"]["held"] == 1, what="the first hold")
        assert ctl.sheet_notice(ctl.status()) is None  # held before the tray looked: no announcement
        (tmp_path / "watch" / "new.csv").write_text("2\n")
        st = wait_for(lambda: (s := ctl.status())["sheets"]["held"] == 2 and s, what="the second hold")
        notice = ctl.sheet_notice(st)
        assert notice is not None and "2 measurements need a sample sheet" in notice and "local page" in notice
        assert ctl.sheet_notice(ctl.status()) is None  # the same holds: said once
        assert ctl.state(st).level == ATTENTION
    finally:
        assert agent.stop() == []
