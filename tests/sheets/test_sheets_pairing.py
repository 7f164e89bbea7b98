"""Every pairing rule and the hold/timeout policy, with real files and the real in-process agent."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from sheets_helpers import FIB_VALUES, OWNER, REPO, AgentEnv, run_rde_validate, wait_for, write_config


def status_json(cfg: Path) -> dict:
    r = subprocess.run([sys.executable, "-m", "agent", "status", "--json", "-c", str(cfg)], capture_output=True,
                       text=True, cwd=REPO, timeout=60)
    assert r.returncode in (0, 1, 3), r.stderr  # healthy, problems, not running (2 = bad config)
    return json.loads(r.stdout)


def sheet_doc(values: dict, template: str = "fib-atom-probe") -> bytes:
    return json.dumps({"format": "labedge-sheet", "version": 1, "template": template,
                       "sheet_id": "5f0e9a52-1111-4222-8333-444455556666", "values": values}).encode()


def test_active_sheet_pairs_the_next_measurements_until_closed(agent_env: AgentEnv) -> None:
    env = agent_env
    env.start()
    st, body = env.post("/api/sheet", {"instrument_id": "fib01", "values": FIB_VALUES})
    assert st == 200 and body["ok"], body
    env.drop("tip07_final.tif")
    pkg = env.wait_packages(1)[0]
    inv = env.invoice(pkg)
    assert inv["custom"]["beam_current"] == 48.0 and inv["custom"]["mask_outer_diameter"] == 5.0
    assert inv["sample"]["names"] == ["W-tip-07"] and inv["sample"]["sampleId"] is None
    assert inv["basic"]["dataName"] == "tip07_final.tif" and inv["basic"]["dataOwnerId"] == OWNER
    prov = env.provenance(pkg)
    assert prov["pairing"]["status"] == "paired" and prov["pairing"]["source"] == "active-sheet"
    assert prov["pairing"]["sheet_id"] == body["sheet_id"]
    run_rde_validate(Path(pkg.path))

    st, _ = env.post("/api/sheet/close", {"instrument_id": "fib01"})
    assert st == 200
    env.drop("tip08.tif")
    wait_for(lambda: len(env.holds()) == 1, what="the next measurement to be held")
    assert len(env.packages()) == 1
    wait_for(lambda: status_json(env.config).get("sheets", {}).get("held") == 1, what="status to show the hold")
    st_json = status_json(env.config)
    assert st_json["sheets"]["held_list"][0]["name"] == "tip08.tif"
    assert st_json["sheets"]["active"] == {"fib01": None}


def test_a_sheet_activated_after_settling_does_not_pair_but_can_be_picked(agent_env: AgentEnv) -> None:
    env = agent_env
    env.start()
    env.drop("early.tif")
    hold = wait_for(lambda: env.holds(), what="a hold")[0]
    st, body = env.post("/api/sheet", {"instrument_id": "fib01", "values": FIB_VALUES})
    assert st == 200
    text = subprocess.run([sys.executable, "-m", "agent", "status", "-c", str(env.config)], capture_output=True,
                          text=True, cwd=REPO, timeout=60).stdout
    assert "active sheet for fib01: W-tip-07" in text
    time.sleep(0.5)  # give a (wrong) automatic pairing the chance to happen; the rule says it must not
    assert env.packages() == [] and len(env.holds()) == 1
    st, _ = env.post("/api/hold/pick", {"hold": hold.fingerprint, "sheet_id": body["sheet_id"]})
    assert st == 200
    pkg = env.wait_packages(1)[0]
    assert env.provenance(pkg)["pairing"]["source"] == "picked"
    assert env.invoice(pkg)["custom"]["beam_current"] == 48.0
    assert env.holds() == []
    st, body = env.post("/api/hold/pick", {"hold": hold.fingerprint, "sheet_id": body["sheet_id"]})
    assert st == 404  # no longer waiting


def test_sheet_file_beside_the_data_before_and_after(agent_env: AgentEnv) -> None:
    env = agent_env
    env.start()
    a = env.watch / "runA"
    env.drop("W-tip-07.sheet.json", sheet_doc(FIB_VALUES), folder=a)
    env.drop("a1.tif", folder=a)
    pkg = env.wait_packages(1)[0]
    prov = env.provenance(pkg)
    assert prov["pairing"]["source"] == "sheet-file" and prov["pairing"]["details"]["sheet_file"].endswith(
        "W-tip-07.sheet.json")
    assert [s["raw"] for s in prov["sources"]] == ["raw/a1.tif"]  # the sheet is never packaged as data
    code, page = env.request("GET", "/")  # the page says which rule paired it
    assert code == 200 and "paired by: sheet file beside the data (W-tip-07.sheet.json)" in page
    run_rde_validate(Path(pkg.path))

    # a sheet file pairs only data written AFTER it: one put beside held data does not pair it silently
    b = env.watch / "runB"
    env.drop("b1.tif", folder=b)
    wait_for(lambda: len(env.holds()) == 1, what="b1 to be held")
    other = {**FIB_VALUES, "sample.names": "W-tip-09", "custom.beam_current": 30}
    sheet = env.drop("tip09.sheet.json", sheet_doc(other), folder=b)
    wait_for(lambda: env.agent.web.db.file_sheet(str(sheet)), what="the sheet file to be recorded")
    env.drop("b2.tif", folder=b)
    newest = env.wait_packages(2)[0]
    assert [s["raw"] for s in env.provenance(newest)["sources"]] == ["raw/b2.tif"]
    assert env.invoice(newest)["sample"]["names"] == ["W-tip-09"]
    assert env.invoice(newest)["custom"]["beam_current"] == 30.0
    assert env.provenance(newest)["pairing"]["source"] == "sheet-file"
    assert [h.measurement.name for h in env.holds()] == ["b1.tif"]  # still waiting: the user picks for it
    sid = env.agent.web.db.file_sheet(str(sheet))[0].id
    assert env.post("/api/hold/pick", {"hold": env.holds()[0].fingerprint, "sheet_id": sid})[0] == 200
    assert env.invoice(env.wait_packages(3)[0])["sample"]["names"] == ["W-tip-09"]
    run_rde_validate(Path(newest.path))


def test_a_hostile_sheet_file_is_refused_visibly_and_the_data_waits(agent_env: AgentEnv) -> None:
    env = agent_env
    env.start()
    bad = {**FIB_VALUES, "custom.beam_current": "<script>alert(1)</script>"}
    env.drop("bad.sheet.json", sheet_doc(bad))
    env.drop("c1.tif")
    wait_for(lambda: len(env.holds()) == 1, what="c1 to be held")
    problems = wait_for(lambda: [p for p in status_json(env.config)["problems"] if "bad.sheet.json" in p["message"]],
                        what="a problem naming the sheet file")
    assert "custom.beam_current: must be a number" in problems[0]["message"]
    assert env.packages() == []


def test_policy_send_releases_unpaired_after_hold_seconds(tmp_path: Path) -> None:
    watch = tmp_path / "watch"
    cfg = write_config(tmp_path, instruments=f'''
[[instruments]]
id = "xps1"
template = "xps"
watch = ["{watch.as_posix()}"]
settle_seconds = 0.3
unpaired_policy = "send"
hold_seconds = 1.5
''')
    env = AgentEnv(tmp_path, watch, cfg)
    env.start()
    try:
        t0 = time.monotonic()
        env.drop("spectrum.vms")
        wait_for(lambda: len(env.holds()) == 1, what="a hold")
        pkg = env.wait_packages(1)[0]
        assert time.monotonic() - t0 >= 1.5
        prov = env.provenance(pkg)
        assert prov["pairing"]["status"] == "unpaired" and "no sample sheet within 1.5 s" in \
            prov["pairing"]["details"]["reason"]
        inv = env.invoice(pkg)
        assert set(inv) == {"datasetId", "basic", "custom"} and "unpaired" in inv["basic"]["description"]
        assert inv["basic"]["dataOwnerId"] == OWNER
        run_rde_validate(Path(pkg.path))
        assert env.holds() == []
    finally:
        env.stop()


def test_holds_survive_a_restart_without_duplicates_then_time_out_once(tmp_path: Path) -> None:
    env = AgentEnv(tmp_path, tmp_path / "watch", write_config(tmp_path))  # policy hold
    env.start()
    env.drop("h1.tif")
    env.drop("h2.tif", b"other\n")
    wait_for(lambda: len(env.holds()) == 2, what="two holds")
    first = {h.fingerprint: h.held_at for h in env.holds()}
    env.stop()
    assert status_json(env.config)["sheets"]["held"] == 2  # shown with the agent stopped too

    env.start()  # the catch-up scan finds both unpackaged files again
    wait_for(lambda: env.agent.watchers["fib01"].scans_done >= 1, what="the catch-up scan")
    time.sleep(1.0)  # they settle (0.3 s) and are paired again; they must map onto the same holds
    assert {h.fingerprint: h.held_at for h in env.holds()} == first
    env.stop()

    # the facility changes the policy: send after a short hold; each measurement goes out exactly once
    text = env.config.read_text().replace('unpaired_policy = "hold"', 'unpaired_policy = "send"\nhold_seconds = 0.5')
    env.config.write_text(text)
    env.start()
    pkgs = env.wait_packages(2)
    time.sleep(1.0)  # the timer and the catch-up scan both resubmit; neither may add a third package
    assert len(env.packages()) == 2 and env.holds() == []
    names = sorted(env.provenance(p)["sources"][0]["raw"] for p in pkgs)
    assert names == ["raw/h1.tif", "raw/h2.tif"]


def test_filling_a_sheet_for_a_held_measurement_pairs_only_that_one(agent_env: AgentEnv) -> None:
    env = agent_env
    env.start()
    env.drop("waiting.tif")
    hold = wait_for(lambda: env.holds(), what="a hold")[0]
    st, page = env.request("GET", f"/sheet/fib01?hold={hold.fingerprint}")
    assert st == 200 and "waiting.tif" in page
    values = {**FIB_VALUES, "sample.names": "for-the-held-one"}
    st, body = env.post("/api/sheet", {"instrument_id": "fib01", "values": values, "hold": hold.fingerprint})
    assert st == 200, body
    pkg = env.wait_packages(1)[0]
    assert env.provenance(pkg)["pairing"]["source"] == "picked"
    assert env.invoice(pkg)["sample"]["names"] == ["for-the-held-one"]
    run_rde_validate(Path(pkg.path))
    env.drop("next.tif")  # the filled sheet was for that measurement only, not made active
    wait_for(lambda: len(env.holds()) == 1, what="the next measurement to be held")


def test_an_old_or_foreign_sheet_file_does_not_pair(agent_env: AgentEnv) -> None:
    """A sheet file expires (sheet_file_hours, 12 h by default) and must be of the instrument's template."""
    import os
    env = agent_env
    env.start()
    old = env.watch / "old"
    sheet = env.drop("last-week.sheet.json", sheet_doc(FIB_VALUES), folder=old)
    t = time.time() - 13 * 3600
    os.utime(sheet, (t, t))  # left in the folder 13 h ago
    env.drop("new.tif", folder=old)
    wait_for(lambda: [h.measurement.name for h in env.holds()] == ["new.tif"], what="new.tif to wait for a sheet")
    xrd = env.watch / "xrd"
    env.drop("si.sheet.json", sheet_doc({"basic.dateSubmitted": "2026-11-20", "sample.names": "Si",
                                         "custom.sample_form": "powder"}, template="xrd-powder"), folder=xrd)
    env.drop("tip.tif", folder=xrd)
    problem = wait_for(lambda: [p for p in status_json(env.config)["problems"] if "si.sheet.json" in p["message"]],
                       what="the mismatch named")[0]
    assert "'xrd-powder' sheet but fib01 uses 'fib-atom-probe'" in problem["message"]
    assert sorted(h.measurement.name for h in env.holds()) == ["new.tif", "tip.tif"] and env.packages() == []
