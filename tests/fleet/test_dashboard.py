"""The fleet dashboard in real headless Chromium against real mosquitto: token required, states
in colour AND symbol AND word, filters, a per-device page, updates without a reload, ja/en, and
hostile device strings shown as text. Screenshots are checked for the state colours."""
from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fleet_helpers import SimDevice, write_fleet_toml
from transport_helpers import wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sheets"))
from sheets_helpers import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from testpaths import in_ci  # noqa: E402

from facility.catalog import open_catalog  # noqa: E402
from facility.catalog.bag_facts import PackageFacts  # noqa: E402
from facility.fleet.dashboard import DashboardServer  # noqa: E402
from facility.fleet_config import load_fleet_config  # noqa: E402

RED, GREEN = (0xCF, 0x22, 0x2E), (0x1A, 0x7F, 0x37)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        (pytest.fail if in_ci() else pytest.skip)("playwright is not installed (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        (pytest.fail if in_ci() else pytest.skip)(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


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
