"""The lab user's view of sheets and the queue page in headless Chromium (issue 12): no carry-over,
full-width digits, feedback in view, the language switch, the template mismatch, the countdown, the
settling files and the offline sheet's file name. Screenshots go to test-artifacts."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sheets_helpers import FIB_VALUES, OWNER, REPO, AgentEnv, wait_for, write_config


def open_page(page, url: str) -> None:  # noqa: ANN001
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=10000)


def in_view(page, selector: str) -> bool:  # noqa: ANN001
    box = page.locator(selector).bounding_box()
    vp = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= vp["height"] and box["height"] > 0


def fill_required(page, sample: str, beam: str = "48") -> None:  # noqa: ANN001
    page.fill("[name='sample.names']", sample)
    page.fill("[name='custom.beam_current']", beam)


def test_no_carry_over_prefilled_marked_and_full_width_digits(agent_env: AgentEnv, page, artifacts_dir: Path) -> None:
    env = agent_env
    env.start()
    page.set_viewport_size({"width": 1366, "height": 768})
    open_page(page, env.url + "/sheet/fib01")
    # the facility's values are marked as prefilled; nothing else is filled in
    assert page.locator("#o-basic\\.dataOwnerId").inner_text() == "prefilled"
    assert page.locator("#o-custom\\.acceleration_voltage").inner_text() == "prefilled"
    assert page.locator("#o-sample\\.names").count() == 0
    assert "marks a required field" in page.inner_text("#legend")
    assert page.locator("#same-as-last").count() == 0  # nothing to repeat yet
    # the Save button stays in view (sticky) at the top of a long form
    assert in_view(page, "#submit")
    fill_required(page, "W-tip-07", beam="１２０")  # full-width digits from a Japanese IME
    page.fill("[name='sample.description']", "first user's sample")
    page.locator("[name='custom.acceleration_voltage']").fill("20")  # typed over: no longer marked
    assert page.locator("#o-custom\\.acceleration_voltage").count() == 0
    page.click("#submit")
    page.wait_for_selector("#banner.ok", timeout=10000)
    assert in_view(page, "#banner")  # the feedback is where the eye is, not off-screen
    assert page.get_attribute("#banner", "aria-live") == "polite"
    page.screenshot(path=str(artifacts_dir / "sheet-saved-1366.png"))
    active = env.agent.web.db.active("fib01")
    assert active.values["custom.beam_current"] == 120.0 and active.values["sample.names"] == "W-tip-07"

    # the next user opens the sheet: per-sample fields are empty; the last sample comes back on request
    nxt = page.context.new_page()
    open_page(nxt, env.url + "/sheet/fib01")
    assert nxt.input_value("[name='sample.names']") == "" and nxt.input_value("[name='sample.description']") == ""
    assert nxt.input_value("[name='custom.acceleration_voltage']") == "30"  # the template's default, marked
    nxt.click("#same-as-last")
    assert nxt.input_value("[name='sample.names']") == "W-tip-07"
    assert nxt.input_value("[name='custom.acceleration_voltage']") == "20"
    assert nxt.locator("#o-sample\\.names").inner_text() == "from last sample"
    assert in_view(nxt, "#banner") and "last sample" in nxt.inner_text("#banner")
    nxt.click("#clear")  # "New sample"
    assert nxt.input_value("[name='sample.names']") == "" and nxt.inner_text("#clear") == "New sample"
    # length limits while typing: the box stops at the limit and shows the count
    nxt.locator("[name='sample.names']").press_sequentially("x" * 10)
    nxt.fill("[name='sample.names']", "y" * 300)
    assert len(nxt.input_value("[name='sample.names']")) == 255
    assert nxt.inner_text("#n-sample\\.names") == "255/255"
    nxt.set_viewport_size({"width": 800, "height": 768})
    nxt.screenshot(path=str(artifacts_dir / "sheet-limits-800.png"))
    assert page.js_errors == []


def test_the_queue_page_follows_the_browser_language_and_switches(browser, tmp_path: Path,
                                                                   artifacts_dir: Path) -> None:
    env = AgentEnv(tmp_path, tmp_path / "watch", write_config(tmp_path))
    env.start()
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="ja-JP")
    try:
        page = ctx.new_page()
        env.drop("試料A-01.tif")
        wait_for(lambda: env.holds(), what="the hold")
        assert env.post("/api/sheet", {"instrument_id": "fib01", "values": FIB_VALUES})[0] == 200  # one to pick
        open_page(page, env.url + "/")
        body = page.inner_text("body")
        assert page.get_attribute("html", "lang") == "ja"
        assert "シート待ち (1)" in body and "試料A-01.tif" in body
        assert "Needs a sample sheet" not in body and "Queue" not in body  # one language, not doubled
        assert page.inner_text("#summary").startswith("要確認 1 件の測定にサンプルシートが必要です")
        page.screenshot(path=str(artifacts_dir / "queue-ja-1366.png"))
        page.click("button[data-pick]")  # nothing picked: the refusal is in Japanese and in view
        assert page.inner_text("#banner") == "シートを選んでください" and in_view(page, "#banner")
        code, out = env.post("/api/hold/pick", {"hold": "0" * 32, "sheet_id": "x"}, headers={"Accept-Language": "ja"})
        assert code == 404 and out["message"]["ja"].startswith("そのデータはもう")  # server messages in both
        page.click("button[data-lang='en']")
        page.wait_for_selector("html[lang='en']")
        page.wait_for_selector("body[data-ready='1']")
        assert "Needs a sample sheet (1)" in page.inner_text("body") and "シート待ち" not in page.inner_text("body")
        page.set_viewport_size({"width": 800, "height": 768})
        page.screenshot(path=str(artifacts_dir / "queue-en-800.png"), full_page=True)
        page.goto(env.url + "/sheet/fib01")  # the sheet follows the same choice
        page.wait_for_selector("body[data-ready='1']")
        assert page.inner_text("#submit") == "Use this sheet"
        page.screenshot(path=str(artifacts_dir / "sheet-en-after-switch.png"))
    finally:
        ctx.close()
        env.stop()


TWO = '''
[[instruments]]
id = "fib01"
template = "fib-atom-probe"
watch = ["{w}/fib"]
settle_seconds = 0.3
unpaired_policy = "send"
hold_seconds = 90
[[instruments]]
id = "xrd01"
template = "xrd-powder"
watch = ["{w}/xrd"]
settle_seconds = 60
'''


def test_mismatch_is_refused_or_confirmed_and_the_countdown_runs(browser, tmp_path: Path, artifacts_dir: Path) -> None:
    w = (tmp_path / "watch").as_posix()
    (tmp_path / "watch" / "fib").mkdir(parents=True)
    (tmp_path / "watch" / "xrd").mkdir(parents=True)
    env = AgentEnv(tmp_path, tmp_path / "watch" / "fib", write_config(tmp_path, instruments=TWO.replace("{w}", w)))
    env.start()
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="en-US")
    errors: list[str] = []
    try:
        page = ctx.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        code, xrd = env.post("/api/sheet", {"instrument_id": "xrd01", "values": {
            "basic.dateSubmitted": "2026-11-20", "sample.names": "Si powder", "custom.sample_form": "powder"}})
        assert code == 200
        env.drop("tip.tif")
        wait_for(lambda: env.holds(), what="the hold")
        # a file arriving at the XRD: shown as settling (settle_seconds 60: for the whole test)
        (tmp_path / "watch" / "xrd" / "scan-3.xy").write_text("10 5\n")
        open_page(page, env.url + "/")
        page.locator("#settling li", has_text="scan-3.xy").wait_for(timeout=5000)
        left1 = int(page.inner_text("#held .countdown .left").split()[0])
        assert 80 <= left1 <= 90
        page.locator("#held .countdown .left", has_text=f"{left1 - 1} s").wait_for(timeout=5000)  # it counts down
        page.screenshot(path=str(artifacts_dir / "queue-countdown-settling-1366.png"))

        dialogs: list[str] = []
        page.once("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.select_option("select[data-pick-for]", xrd["sheet_id"])
        page.click("button[data-pick]")
        page.locator("#banner", has_text="Not applied").wait_for(timeout=10000)
        assert dialogs[0] == ("this sheet is for the 'xrd-powder' template, but fib01 (tip.tif) uses "
                              "'fib-atom-probe'\n\nApply it anyway?")
        assert in_view(page, "#banner") and len(env.holds()) == 1
        assert [p for p in env.packages() if p.instrument_id == "fib01"] == []
        page.screenshot(path=str(artifacts_dir / "queue-mismatch-refused-1366.png"))
        page.once("dialog", lambda d: d.accept())  # the user confirms, knowing the mismatch
        page.select_option("select[data-pick-for]", xrd["sheet_id"])
        page.click("button[data-pick]")
        try:
            page.locator("#banner.ok", has_text="Applied: the measurement is packaged shortly").wait_for(timeout=10000)
        except Exception:
            raise AssertionError(f"banner {page.inner_text('#banner')!r}, holds {env.holds()}") from None
        pkg = wait_for(lambda: [p for p in env.packages() if p.instrument_id == "fib01"], what="the package")[0]
        prov = env.provenance(pkg)
        assert prov["pairing"]["source"] == "picked" and "differs" in prov["pairing"]["details"]["note"]
        assert errors == []
    finally:
        ctx.close()
        env.stop()


def test_offline_sheet_keeps_a_japanese_name_and_says_where_it_went(page, tmp_path: Path, artifacts_dir: Path) -> None:
    html = tmp_path / "fib.html"
    r = subprocess.run([sys.executable, "-m", "agent", "sheet", "html", "--template", "fib-atom-probe",
                        "--out", str(html)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    page.set_viewport_size({"width": 800, "height": 768})
    open_page(page, html.as_uri())
    page.click("button[data-lang='ja']")
    page.fill("[name='basic.dataOwnerId']", OWNER)
    page.fill("[name='basic.dateSubmitted']", "2026-11-20")
    page.dispatch_event("[name='basic.dateSubmitted']", "input")
    assert page.inner_text("#d-basic\\.dateSubmitted").startswith("2026年11月20日")  # dates in the chosen language
    fill_required(page, "試料A-01", beam="４８")
    with page.expect_download() as dl:
        page.click("#submit")
    name = dl.value.suggested_filename
    assert name.startswith("試料A-01_2026-11-20_") and name.endswith(".sheet.json")
    text = page.inner_text("#banner")
    assert name in text and "ダウンロード" in text and "データフォルダ" in text and in_view(page, "#banner")
    page.screenshot(path=str(artifacts_dir / "offline-sheet-saved-ja-800.png"))
    doc = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
    assert doc["values"]["sample.names"] == "試料A-01" and doc["values"]["custom.beam_current"] == 48
    page.click("button[data-lang='en']")
    assert page.inner_text("#d-basic\\.dateSubmitted") == "Fri, 20 November 2026"
