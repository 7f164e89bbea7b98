"""One truthful state on the local page and in `labedge status`, against a real broker and receiver.

A real agent (in process, with its local page) uploads over mTLS to a real mosquitto: a held
measurement, the broker down, no receiver subscribed, and an upload in progress each show the state
agent.summary computes, with the words the user needs, in the page (headless Chromium, updated in
place) and in the CLI. Screenshots at 1366x768 go to test-artifacts.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sheets_helpers import FIB_VALUES, REPO, wait_for

from agent.config import load_config
from agent.runner import Agent
from agent.status import build_status
from transport.transport_helpers import MOSQUITTO, PKI, Broker, ReceiverProc, agent_config, make_packages


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


def _config(root: Path, broker: Broker, pki: PKI) -> Path:
    # A rate limit makes the big upload last about 30 s, long enough to read the page under load. (The
    # test used to freeze the receiver instead; frozen longer than ack_timeout, it then rightly read as
    # "the facility's receiver is not answering", and under load reading the page took that long.)
    p = agent_config(root, broker.url, pki, window=1, ack_timeout=20, rate_limit=RATE)
    text = p.read_text().replace("[web]\nenabled = false\n", "[web]\nport = 0\n")
    text = text.replace('id = "inst"\n', 'id = "inst"\ntemplate = "fib-atom-probe"\n')
    p.write_text(text.replace("hold_seconds = 0", "hold_seconds = 900"))
    return p


#: bytes per second: the 2 MiB package takes ~30 s, the sheet's small one a fraction of a second
RATE = 70_000
BIG = 2 * 1024 * 1024


def _cli(config: Path) -> str:
    r = subprocess.run([sys.executable, "-m", "agent", "status", "-c", str(config)], capture_output=True,
                       text=True, cwd=REPO, timeout=60)
    return r.stdout


def _summary(page) -> str:  # noqa: ANN001
    return page.inner_text("#summary")


def test_held_broker_down_receiver_down_and_uploading_read_right(page, pki, tmp_path: Path,
                                                                   artifacts_dir: Path) -> None:
    if not MOSQUITTO.exists():
        pytest.skip("mosquitto is not installed")
    broker = Broker(tmp_path / "broker", pki)  # not started yet: the facility is unreachable
    config = _config(tmp_path / "agent", broker, pki)
    agent = Agent(load_config(config))
    agent.start()
    rx = None
    page.set_viewport_size({"width": 1366, "height": 768})
    try:
        url = f"http://127.0.0.1:{agent.web.port}/"
        # 1. a measurement without a sheet: held, with the countdown before it goes out unpaired
        (tmp_path / "agent" / "watch" / "run-1.tif").write_bytes(b"II*\x00" + b"\x00" * 64)
        wait_for(lambda: build_status(agent.cfg)["sheets"]["held"] == 1, what="the hold")
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        assert _summary(page) == "needs attention 1 measurement needs a sample sheet (run-1.tif)"
        assert "goes out unpaired in 15 min" in page.inner_text("#action")
        left = page.inner_text("#held .countdown .left")
        assert left in ("15 min", "14 min"), left
        page.screenshot(path=str(artifacts_dir / "state-held-1366.png"))
        cli = _cli(config)
        assert "NEEDS ATTENTION: 1 measurement needs a sample sheet (run-1.tif)" in cli
        assert "ONLINE" not in cli

        # 2. the sheet is given; the broker is down: offline, in plain words, once (no port jargon as a problem)
        fp = build_status(agent.cfg)["sheets"]["held_list"][0]["hold"]
        code, _ = _post(agent, "/api/sheet", {"instrument_id": "inst", "values": FIB_VALUES, "hold": fp})
        assert code == 200
        page.locator("#summary", has_text="will upload when the facility is reachable").wait_for(timeout=15000)
        assert _summary(page) == "offline will upload when the facility is reachable"
        status_text = page.inner_text("#status")
        assert status_text.count("will upload") == 1 and "needs a look" not in status_text
        assert "localhost:" not in status_text  # the broker's address is folded away under Details
        page.click("#detail summary")
        assert "cannot reach localhost:" in page.inner_text("#detail")
        page.screenshot(path=str(artifacts_dir / "state-broker-down-1366.png"))
        cli = _cli(config)
        assert "OFFLINE: will upload when the facility is reachable" in cli and "ONLINE" not in cli
        r = subprocess.run([sys.executable, "-m", "agent", "status", "--json", "-c", str(config)],
                           capture_output=True, text=True, cwd=REPO, timeout=60)
        summary = json.loads(r.stdout)["summary"]
        assert (summary["state"], summary["reason"]) == ("offline", "will upload when the facility is reachable")
        assert summary["ja"]["reason"] == "施設に接続できしだい送信します" and "localhost:" in summary["detail"]
        page.click("#detail summary")  # fold it again: the page keeps the user's open Details as they are

        # 3. the broker is back but no receiver listens: not "All well", not "uploading 0 B"
        broker.start()
        page.locator("#summary", has_text="receiver is not answering").wait_for(timeout=30000)
        assert _summary(page) == "offline uploads wait: the facility's receiver is not answering"
        assert "0 B" not in page.inner_text("#status")
        page.screenshot(path=str(artifacts_dir / "state-receiver-down-1366.png"))
        assert "OFFLINE: uploads wait: the facility's receiver is not answering" in _cli(config)

        # 4. a big upload in progress: the state in words, a percentage, and which measurement it is
        big = next(iter(make_packages(config, [BIG])))
        rx = ReceiverProc(tmp_path / "rx", broker, pki, tmp_path / "store")
        rx.start_connected()

        def midway() -> bool:
            # the small package first: while both are in transfer the summary rightly says "uploading 2"
            if agent.store.counts()["delivered"] < 1:
                return False
            ts = (build_status(agent.cfg).get("upload") or {}).get("transfers") or []
            return any(t["package_id"] == big and 0 < t["done_bytes"] < t["total_bytes"] for t in ts)
        wait_for(midway, 60, "the small package delivered and the big upload under way")
        row = page.locator(f"tr[data-package='{big}']")
        row.locator("progress").wait_for(timeout=20000)
        text = row.inner_text()
        assert "uploading" in text and "%" in text
        try:
            page.locator("#summary", has_text="working uploading 1 package").wait_for(timeout=20000)
        except Exception:
            raise AssertionError(f"summary reads {_summary(page)!r}") from None
        assert agent.store.counts()["delivered"] == 1, "the page was read after the upload ended"
        page.screenshot(path=str(artifacts_dir / "state-uploading-1366.png"))
        try:
            wait_for(lambda: agent.store.counts()["delivered"] == 2, 60, "both packages delivered")
        except AssertionError:
            raise AssertionError(f"{agent.store.counts()} {json.dumps(build_status(agent.cfg)['upload'])[:2000]}"
                                 f"\n{rx.text()[-3000:]}") from None
        page.locator("#summary", has_text="everything is uploaded").wait_for(timeout=15000)
        assert _summary(page) == "up to date everything is uploaded (2 packages delivered)"
        delivered = page.locator("tr[data-package]", has_text="W-tip-07")
        assert "run-1.tif" in delivered.inner_text() and "picked on this page" in delivered.inner_text()
        assert page.js_errors == []
    finally:
        if rx is not None:
            rx.kill(signal.SIGTERM)
        assert agent.stop() == []
        broker.stop()


def _post(agent: Agent, path: str, body: dict) -> tuple[int, dict]:
    import urllib.error
    import urllib.request
    req = urllib.request.Request(f"http://127.0.0.1:{agent.web.port}{path}", data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/json",
                                                         "X-Labedge-Token": agent.web.token})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
