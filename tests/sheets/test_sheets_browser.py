"""The sheet page in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)."""
from __future__ import annotations

import json
import re
import time
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sheets_helpers import OWNER, REPO, AgentEnv, run_rde_validate, wait_for

from agent.sheets.sheetdb import SheetDB

EVIL = "<script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\">"


def open_sheet(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=10000)


def reopen_until(page, url: str, seen, timeout: float = 15.0):
    """Open `url` in a new tab of the same browser context until `seen(tab)` holds, as a user reopening it would."""
    deadline = time.monotonic() + timeout
    while True:
        tab = page.context.new_page()
        open_sheet(tab, url)
        if seen(tab):
            return tab
        tab.close()
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} never showed the remembered values within {timeout:.0f} s")


def fill_fib(page, sample: str = "W-tip-07", beam: str = "48") -> None:
    page.fill("[name='sample.names']", sample)
    page.fill("[name='sample.composition']", "W")
    page.fill("[name='custom.beam_current']", beam)
    page.fill("[name='custom.processing_time']", "900")


def test_fib_sheet_served_by_the_agent_pairs_the_next_file(agent_env: AgentEnv, page, artifacts_dir: Path) -> None:
    env = agent_env
    env.start()
    open_sheet(page, env.url + "/sheet/fib01")
    # prefilled: today's date, the only owner/dataset/proposal the agent knows, the template defaults
    assert page.input_value("[name='basic.dataOwnerId']") == OWNER
    assert page.input_value("[name='datasetId']") == "fib-3dap-2026"
    assert page.input_value("[name='custom.acceleration_voltage']") == "30"
    assert page.input_value("[name='custom.mask_outer_diameter']") == "5"
    assert page.inner_text("#row-custom\\.beam_current .unit") == "pA"
    assert page.inner_text("#row-custom\\.mask_inner_diameter .unit") == "µm"
    fill_fib(page)
    page.screenshot(path=str(artifacts_dir / "fib-served-filled.png"), full_page=True)
    page.click("#submit")
    page.wait_for_selector(".banner.ok", timeout=10000)
    assert "next measurements pair with this sheet" in page.inner_text("#banner")
    page.screenshot(path=str(artifacts_dir / "fib-served-saved.png"), full_page=True)
    assert page.js_errors == []

    env.drop("W-tip-07_final.tif")
    pkg = env.wait_packages(1)[0]
    inv = env.invoice(pkg)
    assert inv["sample"]["names"] == ["W-tip-07"] and inv["sample"]["composition"] == "W"
    assert inv["custom"]["beam_current"] == 48.0 and inv["custom"]["processing_time"] == 900.0
    assert inv["custom"]["acceleration_voltage"] == 30.0 and inv["custom"]["mask_inner_diameter"] == 1.5
    assert inv["custom"]["ion_species"] == "Ga"
    assert inv["datasetId"] == "fib-3dap-2026" and inv["basic"]["experimentId"] == "JPMXP1226NM0001"
    assert inv["basic"]["dataOwnerId"] == OWNER and inv["sample"]["sampleId"] is None
    run_rde_validate(Path(pkg.path))


def test_file_page_saves_a_sheet_json_that_pairs_files(agent_env: AgentEnv, page, artifacts_dir: Path) -> None:
    env = agent_env
    html = env.root / "fib.html"
    r = subprocess.run([sys.executable, "-m", "agent", "sheet", "html", "--template", "fib-atom-probe",
                        "--out", str(html)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    text = html.read_text(encoding="utf-8")
    assert not re.search(r"<link|@import|url\(|(src|href)\s*=\s*[\"']?(https?:)?//", text)  # one self-contained file
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    open_sheet(page, html.as_uri())
    page.fill("[name='basic.dataOwnerId']", OWNER)
    fill_fib(page, sample="W-tip-11", beam="120")
    with page.expect_download() as dl:
        page.click("#submit")
    download = dl.value
    assert re.fullmatch(r"W-tip-11_\d{4}-\d\d-\d\d_\d{6}\.sheet\.json", download.suggested_filename)
    page.screenshot(path=str(artifacts_dir / "fib-file-saved.png"), full_page=True)
    assert [u for u in requests if not u.startswith(("file:", "blob:", "data:"))] == []  # nothing from a network
    run_dir = env.watch / "run11"
    run_dir.mkdir(parents=True)
    staged = env.root / download.suggested_filename
    download.save_as(str(staged))
    staged.rename(run_dir / download.suggested_filename)  # the user moves it beside the data
    env.start()
    env.drop("tip11.tif", folder=run_dir)
    pkg = env.wait_packages(1)[0]
    prov = env.provenance(pkg)
    assert prov["pairing"]["source"] == "sheet-file"
    inv = env.invoice(pkg)
    assert inv["sample"]["names"] == ["W-tip-11"] and inv["custom"]["beam_current"] == 120.0
    run_rde_validate(Path(pkg.path))
    # the last values are remembered, but only offered: the next sheet opens empty and "Same as last
    # sample" brings them back. A file: page's storage is handed between tabs by the browser, so the
    # next tab is opened until it offers them.
    stored = page.evaluate("localStorage.getItem('labedge.sheet.fib-atom-probe')")
    assert stored is not None and json.loads(stored)["sample.names"] == "W-tip-11"
    assert page.js_errors == []
    nxt = reopen_until(page, html.as_uri(), lambda p: p.locator("#same-as-last").count() == 1)
    assert nxt.input_value("[name='sample.names']") == "" and nxt.input_value("[name='basic.dataOwnerId']") == ""
    nxt.click("#same-as-last")
    assert nxt.input_value("[name='sample.names']") == "W-tip-11"
    assert nxt.input_value("[name='basic.dataOwnerId']") == OWNER


def test_the_page_refuses_bad_values_with_visible_messages(agent_env: AgentEnv, page, artifacts_dir: Path) -> None:
    env = agent_env
    env.start()
    open_sheet(page, env.url + "/sheet/fib01")
    page.fill("[name='custom.beam_current']", "abc")
    page.fill("[name='custom.mask_inner_diameter']", "-1")
    page.fill("[name='custom.acceleration_voltage']", "500")
    page.fill("[name='custom.processing_time']", "-5")
    page.click("#submit")
    page.wait_for_selector(".banner.bad", timeout=10000)
    msgs = {
        "sample.names": "required",
        "custom.beam_current": "must be a number",
        "custom.mask_inner_diameter": "must be greater than 0",
        "custom.acceleration_voltage": "must be at most 50",
        "custom.processing_time": "must be at least 0",
    }
    for fid, msg in msgs.items():
        m = page.locator(f"[id='m-{fid}']")
        assert m.is_visible() and m.inner_text() == msg, (fid, m.inner_text())
        assert page.get_attribute(f"[name='{fid}']", "aria-invalid") == "true"
    assert page.inner_text("#banner").startswith("5 ")
    page.screenshot(path=str(artifacts_dir / "fib-bad-values-en.png"), full_page=True)
    page.click("button[data-lang='ja']")
    page.click("#submit")
    assert page.inner_text("[id='m-custom.beam_current']") == "数値を入力してください"
    assert page.inner_text("label[for='f-custom.beam_current']").startswith("ビーム電流")
    page.screenshot(path=str(artifacts_dir / "fib-bad-values-ja.png"), full_page=True)
    assert SheetDB(env.agent.store).active("fib01") is None  # nothing was posted
    page.click("button[data-lang='en']")  # leave the next test's page in English


def test_a_script_value_is_shown_as_text_and_never_run(agent_env: AgentEnv, page, artifacts_dir: Path) -> None:
    env = agent_env
    env.start()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_sheet(page, env.url + "/sheet/fib01")
    fill_fib(page, sample=EVIL)
    page.click("#submit")
    page.wait_for_selector(".banner.ok", timeout=10000)
    open_sheet(page, env.url + "/sheet/fib01")
    assert page.input_value("[name='sample.names']") == ""  # no silent carry-over
    page.click("#same-as-last")  # the active sheet's values, on request
    assert page.input_value("[name='sample.names']") == EVIL
    assert EVIL in page.inner_text("#info")
    assert page.evaluate("window.__pwned") is None

    env.post("/api/sheet/close", {"instrument_id": "fib01"})
    env.drop("<img src=x onerror=window.__pwned=3>.tif")
    wait_for(lambda: env.holds(), what="the hold")
    open_sheet(page, env.url + "/")
    body = page.inner_text("body")
    assert "<img src=x onerror=window.__pwned=3>.tif" in body
    assert page.locator("select[data-pick-for] option", has_text="<script>window.__pwned=1").count() == 1
    assert page.evaluate("window.__pwned") is None and dialogs == []
    page.screenshot(path=str(artifacts_dir / "queue-page-escaped.png"), full_page=True)
    assert page.js_errors == []


class _Evil(BaseHTTPRequestHandler):
    agent_url = ""

    def do_GET(self) -> None:  # noqa: N802
        body = f"""<!doctype html><title>evil</title><script>
(async () => {{
  const out = [];
  try {{ const r = await fetch("{self.agent_url}/sheet/fib01"); out.push("read:" + (await r.text()).length); }}
  catch (e) {{ out.push("read-blocked"); }}
  const values = {{"sample.names": "evil", "basic.dateSubmitted": "2026-01-01"}};
  for (const tok of ["", "guess"]) {{
    try {{ await fetch("{self.agent_url}/api/sheet", {{method: "POST", mode: "no-cors",
        headers: {{"Content-Type": "text/plain", "X-Labedge-Token": tok}},
        body: JSON.stringify({{instrument_id: "fib01", values}})}}); out.push("sent"); }}
    catch (e) {{ out.push("send-error"); }}
  }}
  document.title = "done:" + out.join(",");
}})();
</script>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a) -> None:
        pass


def test_another_origin_cannot_read_the_token_or_post(agent_env: AgentEnv, page) -> None:
    env = agent_env
    env.start()
    handler = type("Evil", (_Evil,), {"agent_url": env.url})
    evil = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=evil.serve_forever, daemon=True)
    t.start()
    try:
        page.goto(f"http://127.0.0.1:{evil.server_address[1]}/")
        page.wait_for_function("document.title.startsWith('done:')", timeout=15000)
        title = page.title()
    finally:
        evil.shutdown()
        evil.server_close()
        t.join(5)
    assert "read-blocked" in title, title  # the served page (with the token) is not readable cross-origin
    assert SheetDB(env.agent.store).active("fib01") is None
    assert SheetDB(env.agent.store).recent() == []


def test_attach_files_from_the_queue_page(agent_env: AgentEnv, page, artifacts_dir: Path, tmp_path: Path) -> None:
    from test_sheets_server import png_bytes

    env = agent_env
    env.start()
    env.post("/api/sheet", {"instrument_id": "fib01", "values": {
        "basic.dateSubmitted": "2026-11-20", "sample.names": "W-tip-07", "custom.acceleration_voltage": 30,
        "custom.beam_current": 48, "custom.mask_inner_diameter": 1.5, "custom.mask_outer_diameter": 5}})
    env.drop("tip.tif")
    parent = env.wait_packages(1)[0]
    good, bad = tmp_path / "tip photo.png", tmp_path / "photo.png"
    good.write_bytes(png_bytes())
    open_sheet(page, env.url + "/")
    # the parent is picked by what the user recognises: sample, file name and time, not an id
    label = page.locator(f"#attach-parent option[value='{parent.id}']").inner_text()
    assert label.startswith("W-tip-07 — tip.tif (") and parent.id not in label
    page.select_option("#attach-parent", label=label)
    page.set_input_files("#attach-files", [str(good)])
    page.click("#attach-go")
    page.wait_for_selector(".banner.ok", timeout=10000)
    child = wait_for(lambda: [p for p in env.packages() if p.kind == "attachment"], what="the attachment")[0]
    assert child.parent_id == parent.id and child.id in page.inner_text("#banner")
    assert label in page.inner_text("#banner")
    bad.write_bytes(b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 64)  # an .exe renamed .png
    page.select_option("#attach-parent", parent.id)
    page.set_input_files("#attach-files", [str(bad)])
    page.click("#attach-go")
    page.wait_for_selector(".banner.bad", timeout=10000)
    assert "named .png but its content is not a PNG image" in page.inner_text("#banner")
    import base64
    code, out = env.post("/api/attach", {"parent_id": parent.id, "files": [
        {"name": "photo.png", "data": base64.b64encode(bad.read_bytes()).decode()}]})
    assert code == 400 and out["message"]["ja"] == "'photo.png': 名前は .png ですが中身が PNG 画像ではありません"
    page.screenshot(path=str(artifacts_dir / "queue-attach-refused.png"), full_page=True)
    assert len(env.packages()) == 2 and page.js_errors == []


def test_queue_page_shows_the_status_and_pauses_collection(agent_env: AgentEnv, page, artifacts_dir: Path) -> None:
    """The page the tray opens says what is wrong in words, and pauses and resumes collection."""
    env = agent_env
    env.start()
    env.post("/api/sheet", {"instrument_id": "fib01", "values": {
        "basic.dateSubmitted": "2026-11-20", "sample.names": "W-tip-08", "custom.acceleration_voltage": 30,
        "custom.beam_current": 48, "custom.mask_inner_diameter": 1.5, "custom.mask_outer_diameter": 5}})
    open_sheet(page, env.url + "/")
    assert page.inner_text("#summary") == "offline this PC keeps measurements locally; it is not set up to upload"
    assert "[upload]" not in page.inner_text("body")
    assert page.inner_text("#pause") == "Pause"
    page.click("#pause")
    page.wait_for_selector("#pause[data-paused='0']", timeout=10000)  # updated in place: the button now resumes
    assert page.inner_text("#summary") == "paused by the user: new measurements wait until you resume"
    wait_for(lambda: env.agent.health.get("user_paused"), what="the pause to reach the agent")
    env.drop("tip08.tif")
    wait_for(lambda: env.agent.pipeline.pending() == 1, what="the measurement to wait while paused")
    assert env.packages() == []
    page.locator("#status li", has_text="1 new measurement(s) being prepared").wait_for(timeout=10000)  # live
    page.screenshot(path=str(artifacts_dir / "queue-paused.png"), full_page=True)
    page.click("#pause")
    page.wait_for_selector("#pause[data-paused='1']", timeout=10000)
    pkg = env.wait_packages(1)[0]
    assert env.invoice(pkg)["sample"]["names"] == ["W-tip-08"]
    page.wait_for_selector(f"tr[data-package='{pkg.id}']", timeout=10000)  # the new package appears in place
    assert "W-tip-08" in page.inner_text(f"tr[data-package='{pkg.id}']")
    assert "paused" not in page.inner_text("#summary") and page.js_errors == []
    assert env.post("/api/pause", {"paused": "yes"})[0] == 400
    assert env.post("/api/pause", {"paused": True}, token=None)[0] == 403
