"""The fleet dashboard in real headless Chromium against real mosquitto: token required, states
in colour AND symbol AND word, filters, a per-device page, updates without a reload, ja/en, and
hostile device strings shown as text. Screenshots are checked for the state colours."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fleet_helpers import SimDevice, write_fleet_toml
from transport_helpers import wait_for


from facility.catalog import open_catalog
from facility.catalog.bag_facts import PackageFacts
from facility.fleet.dashboard import DashboardServer
from facility.fleet_config import load_fleet_config

RED, GREEN = (0xCF, 0x22, 0x2E), (0x1A, 0x7F, 0x37)


def _has_colour(png: Path, rgb: tuple[int, int, int]) -> bool:
    from PIL import Image
    img = Image.open(png).convert("RGB")
    colours = img.getcolors(maxcolors=1 << 20) or []
    return any(all(abs(a - b) < 8 for a, b in zip(px, rgb)) for _n, px in colours)


def test_dashboard_in_chromium(tmp_path, broker, pki, browser, artifacts_dir):
    catalog = tmp_path / "store" / ".catalog.sqlite3"
    cat = open_catalog(str(catalog))  # what a receiver recorded: dev-01's deliveries, one hostile sample name
    cat.record_packages([("dev-01", f"20261201T00000000{i}Z-0000abcd",
                          PackageFacts("xrd", "measurement", "paired", "<b>S-%d</b>" % i, "P1", "ok", None, 8, 5000),
                          time.time() - 60 * i, "labedge-receiver") for i in range(3)])
    cat.close()
    cfg = load_fleet_config(write_fleet_toml(tmp_path / "admin", broker, pki, catalog_url=str(catalog)))
    srv = DashboardServer(cfg, port=0).start()
    good = SimDevice(broker, pki, "dev-01").connect()
    bad = SimDevice(broker, pki, "dev-02").connect()
    ctx = browser.new_context(viewport={"width": 1300, "height": 700}, locale="en-US")
    page = ctx.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        assert (tmp_path / "admin" / "dashboard.token").stat().st_mode & 0o777 == 0o600
        good.publish()
        bad.publish(queue={"queued": 2, "uploading": 0, "delivered": 0, "failed": 3},
                    problems=[{"kind": "error", "text": "<img src=x onerror=alert(1)> disk full"}])
        wait_for(lambda: len(srv.dash.watcher.statuses()) == 2, 10, "both statuses at the dashboard")
        # no token: the API refuses, the page sends to the login
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(srv.url + "/api/fleet", timeout=5)
        assert e.value.code == 401
        page.goto(srv.url + "/")
        assert page.url.endswith("/login")
        page.fill("#token", "wrong-token-wrong-token")
        page.click("button[type=submit]")
        page.wait_for_selector("text=Wrong token")
        # the printed URL logs in (token in the fragment, never sent in a request line)
        page.goto(f"{srv.url}/login#token={srv.dash.token}")
        page.wait_for_selector("#devices tbody tr")
        rows = page.locator("#devices tbody tr")
        assert rows.count() == 2
        first = rows.nth(0)
        assert first.get_attribute("data-device") == "dev-02"  # what needs attention first
        state = first.locator("td.state")
        assert state.inner_text().strip() == "✖ Error" and state.get_attribute("data-state") == "error"
        assert "<img src=x onerror=alert(1)> disk full" in first.inner_text()   # shown as text
        assert page.locator("#devices img").count() == 0
        assert rows.nth(1).locator("td.state").inner_text().strip() == "● OK"
        shot = artifacts_dir / "fleet-en.png"
        page.screenshot(path=str(shot), full_page=True)
        assert _has_colour(shot, RED) and _has_colour(shot, GREEN)
        # filters
        page.click("button[data-filter=attention]")
        assert rows.count() == 1 and rows.nth(0).get_attribute("data-device") == "dev-02"
        page.click("button[data-filter=all]")
        assert rows.count() == 2
        # updates without a reload: dev-02 recovers, dev-01 crashes (its will)
        page.evaluate("window.__marker = 1")
        bad.publish()
        good.client.socket().close()
        # (CSS selectors: the page's CSP forbids the string-eval that wait_for_function would need)
        page.locator('tr[data-device="dev-02"] td.state[data-state="ok"]').wait_for()
        page.locator('tr[data-device="dev-01"] td.state[data-state="offline"]').wait_for()
        assert page.evaluate("window.__marker") == 1   # same page: no reload happened
        page.click("button[data-filter=offline]")
        assert rows.count() == 1 and rows.nth(0).get_attribute("data-device") == "dev-01"
        page.screenshot(path=str(artifacts_dir / "fleet-offline-filter.png"), full_page=True)
        # the device page
        page.click("button[data-filter=all]")
        page.click("a[href^='/device/dev-01']")
        page.wait_for_selector("#facts")
        assert "■ Offline" in page.locator("#facts").inner_text()
        assert "connection lost" in page.locator("#facts").inner_text()
        assert "0.1.0" in page.locator("#facts").inner_text()   # what it said while online is kept
        deliveries = page.locator("#deliveries tbody tr")
        assert deliveries.count() == 3
        assert deliveries.nth(0).inner_text().split("\t")[:2] == ["20261201T000000000Z-0000abcd", "<b>S-0</b>"]
        assert page.locator("#deliveries b").count() == 0
        assert "4.9 KiB" in deliveries.nth(0).inner_text()
        assert page.locator("#facts dd").nth(3).inner_text().endswith("ago")  # last seen: its last heartbeat
        page.screenshot(path=str(artifacts_dir / "fleet-device.png"), full_page=True)
        # Japanese
        page.goto(srv.url + "/?lang=ja")
        page.wait_for_selector("#devices tbody tr")
        assert page.locator("h1").inner_text() == "labedge フリート"
        assert "要対応" in page.locator(".bar").inner_text()
        assert page.locator("tr[data-device='dev-01'] td.state").inner_text().strip() == "■ オフライン"
        assert "接続が切れました" in page.locator("tr[data-device='dev-01'] .why").inner_text()
        page.screenshot(path=str(artifacts_dir / "fleet-ja.png"), full_page=True)
        # the API with the bearer token
        req = urllib.request.Request(srv.url + "/api/fleet", headers={"Authorization": f"Bearer {srv.dash.token}"})
        body = json.loads(urllib.request.urlopen(req, timeout=5).read())
        assert {d["device"]: d["state"] for d in body["devices"]} == {"dev-01": "offline", "dev-02": "ok"}
        assert srv.httpd.server_address[0] == "127.0.0.1"
        assert not errors, errors
    finally:
        ctx.close()
        for s in (good, bad):
            try:
                s.close()
            except Exception:  # noqa: BLE001
                pass
        srv.stop()


def test_dashboard_refuses_without_token_and_from_other_sites(tmp_path, broker, pki):
    cfg = load_fleet_config(write_fleet_toml(tmp_path / "admin", broker, pki))
    srv = DashboardServer(cfg, port=0).start()

    def call(path, *, method="GET", body=None, headers=None):
        req = urllib.request.Request(srv.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()
    try:
        good = json.dumps({"token": srv.dash.token}).encode()
        assert call("/api/fleet")[0] == 401
        assert call("/api/fleet", headers={"Authorization": "Bearer " + "x" * 43})[0] == 401
        assert call("/api/device/dev-01", headers={"Cookie": "labedge_fleet=nope"})[0] == 401
        assert call("/login", method="POST", body=json.dumps({"token": "guess"}).encode())[0] == 403
        # another web page cannot log the browser in (login CSRF)
        assert call("/login", method="POST", body=good, headers={"Origin": "http://evil.example"})[0] == 403
        code, headers, _ = call("/login", method="POST", body=good, headers={"Origin": srv.url})
        assert code == 204
        cookie = headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        auth = {"Cookie": cookie.split(";")[0]}
        code, headers, body = call("/", headers=auth)
        assert code == 200 and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert call("/api/device/no-such-pc", headers=auth)[0] == 404
        assert call("/device/..%2f..%2fetc", headers=auth)[0] == 404
        # the token file is made once and kept
        assert (tmp_path / "admin" / "dashboard.token").read_text().strip() == srv.dash.token
    finally:
        srv.stop()


def _status(device, **config):
    return {"v": 1, "device": device, "online": True, "sent_at": time.time(), "interval": 60,
            "agent_version": "0.1.0", "config": config}


def test_dashboard_shows_the_push_history(tmp_path, broker, pki, browser, artifacts_dir):
    """The Configuration view and the device page from a real catalog, first without any push (the
    history's tables do not exist yet), then with pushes recorded through facility.remote.history."""
    from facility.remote.history import History, history_catalog
    catalog = tmp_path / "store" / ".catalog.sqlite3"
    cat = open_catalog(str(catalog))   # the receiver's tables only: no push was ever made
    now = time.time()
    cat.record_statuses([
        ("dev-ok", _status("dev-ok", version="7", state="applied", applied_version=7, event_version=7), now),
        # its status has moved on (it reports running 6, applied): only the history says it rolled 7 back
        ("dev-bad", _status("dev-bad", version="6", state="applied", applied_version=6, event_version=6), now),
        # the history has no answer yet, its status says it applied 7
        ("dev-late", _status("dev-late", version="7", state="applied", applied_version=7, event_version=7), now)])
    cat.close()
    cfg = load_fleet_config(write_fleet_toml(tmp_path / "admin", broker, pki, catalog_url=str(catalog)))
    srv = DashboardServer(cfg, port=0).start()
    ctx = browser.new_context(viewport={"width": 1300, "height": 900}, locale="en-US")
    page = ctx.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    hostile = "<script>window.__pwned=1</script> trial: watch folder unreadable"
    try:
        page.goto(f"{srv.url}/login#token={srv.dash.token}")
        page.wait_for_selector("#devices tbody tr")
        assert page.locator("#devices tbody tr").count() == 3
        page.click("button[data-filter=attention]")
        assert page.locator("#devices tbody tr").count() == 0   # nothing to go on yet: all ok
        page.click("#nav-config")
        note = page.locator("#history-note")
        assert note.inner_text() == "No configuration pushed yet." and note.get_attribute("data-code") == "absent"
        page.goto(srv.url + "/device/dev-bad")
        page.wait_for_selector("#config-reported")
        assert page.locator("#history-note").inner_text() == "No configuration pushed yet."
        assert "6 / applied" in page.locator("#config-reported").inner_text()

        h = History(history_catalog(str(catalog)), tmp_path / "admin" / "remote-audit.jsonl")
        p1, v1, _ = h.reserve_push(signer="alice", key_id="k1", targets={"devices": ["dev-bad", "dev-ok"]},
                                   fragment="rescan_seconds = 30\n", sign=lambda v: b"{}")
        for d in ("dev-bad", "dev-ok"):
            h.result(p1, d, v1, "applied")
        h.finish_push(p1, "done")
        p2, v2, _ = h.reserve_push(signer="<b>mallory</b>", key_id="k1", targets={"groups": ["xrd"]},
                                   fragment="rescan_seconds = 10\n", sign=lambda v: b"{}")
        h.result(p2, "dev-ok", v2, "applied")
        h.result(p2, "dev-bad", v2, "rolled_back", hostile)
        h.result(p2, "dev-late", v2, "sent")
        h.close()
        assert (v1, v2) == (1, 2)

        # the device page updates by itself: its version as it reports it, next to its last push
        page.locator("#last-push [data-result=rolled_back]").wait_for()
        last = page.locator("#last-push").inner_text()
        assert last.startswith(f"Push {p2} · Version 2 · ▲ rolled back") and hostile in last
        assert page.locator("#device-pushes tbody tr").count() == 2
        assert page.locator("#config-reported dt").nth(1).inner_text() == "in force"
        assert page.locator("#config-reported dd").nth(1).inner_text() == "6"    # the version it runs
        assert page.locator("#device-pushes tbody tr").nth(1).locator("td").nth(4).inner_text() == "● applied"
        assert "rolled back config version 2: " + hostile in page.locator("#facts").inner_text()
        page.screenshot(path=str(artifacts_dir / "fleet-device-config.png"), full_page=True)
        # the list: the rolled-back device needs attention, with the reason
        page.goto(srv.url + "/?filter=attention")
        page.wait_for_selector("#devices tbody tr")
        rows = page.locator("#devices tbody tr")
        assert rows.count() == 1 and rows.nth(0).get_attribute("data-device") == "dev-bad"
        assert rows.nth(0).locator("td.state").inner_text().strip() == "▲ Warning"
        assert rows.nth(0).locator(".why").inner_text() == "rolled back config version 2: " + hostile
        # the Configuration view: newest first, results per device, hostile strings as text
        page.click("#nav-config")
        page.wait_for_selector("section.push")
        sections = page.locator("section.push")
        assert [sections.nth(i).get_attribute("data-push") for i in range(2)] == [str(p2), str(p1)]
        newest = sections.nth(0)
        assert newest.get_attribute("data-state") == "running"
        facts = newest.locator(".push-facts").inner_text()
        assert "<b>mallory</b>" in facts and "group xrd" in facts and "running" in facts
        assert "applied 1 · rolled back 1 · no answer yet 1" in facts   # as recorded; rows say what it did since
        res = {newest.locator("tbody tr").nth(i).get_attribute("data-device"):
               newest.locator("tbody tr").nth(i).inner_text() for i in range(3)}
        assert list(res)[0] == "dev-bad"                           # what needs attention first
        assert "▲ rolled back" in res["dev-bad"] and hostile in res["dev-bad"]
        assert "● applied (from the device's status)" in res["dev-late"]
        assert "● applied" in res["dev-ok"]
        assert page.locator("main script, main b").count() == 0
        assert page.evaluate("window.__pwned") is None
        page.screenshot(path=str(artifacts_dir / "fleet-config.png"), full_page=True)
        # Japanese
        page.goto(srv.url + "/config?lang=ja")
        page.wait_for_selector("section.push")
        assert page.locator("h1").inner_text() == "最近の設定配布"
        assert "ロールバック" in page.locator("section.push").nth(0).locator("tr[data-device=dev-bad]").inner_text()
        page.goto(srv.url + "/?lang=ja&filter=attention")
        page.wait_for_selector("#devices tbody tr")
        assert page.locator(".why").inner_text() == "設定バージョン 2 をロールバック: " + hostile
        assert not errors, errors
    finally:
        ctx.close()
        srv.stop()
