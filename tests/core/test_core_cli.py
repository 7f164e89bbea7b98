"""The core CLI contracts: verify, status --json, init; and a clean stop without leaked threads."""
from __future__ import annotations

import json
import shutil

from core_helpers import run_agent  # noqa: F401 - fixture
from core_helpers import instrument, labedge, package_dirs, packages_with, wait_for, write_config

from agent.config import load_config


def _one_package(tmp_path, run_agent):
    watch = tmp_path / "watch"
    watch.mkdir()
    cfg = write_config(tmp_path, [instrument(watch)])
    agent = run_agent(cfg)
    src = watch / "scan.ras"
    src.write_bytes(b"*RAS_DATA_START\n10.0 5\n")
    wait_for(lambda: packages_with(agent.cfg.state_db, src), 30, "a package")
    return cfg, agent


def test_verify_good_and_tampered_package(tmp_path, run_agent):
    cfg, agent = _one_package(tmp_path, run_agent)
    assert run_agent.stop(agent) == []
    (pkg,) = package_dirs(agent.cfg.spool_dir)
    r = labedge("verify", str(pkg))
    assert r.returncode == 0 and r.stdout.startswith("OK"), r.stdout + r.stderr
    tampered = tmp_path / "tampered"
    shutil.copytree(pkg, tampered)
    (tampered / "data/raw/scan.ras").write_bytes(b"*RAS_DATA_START\n10.0 6\n")  # same size, one byte off
    r = labedge("verify", str(pkg), str(tampered))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "OK   " + str(pkg) in r.stdout and "BAD  " + str(tampered) in r.stdout
    assert "data/raw/scan.ras" in r.stdout, r.stdout
    missing = tmp_path / "missing-file"
    shutil.copytree(pkg, missing)
    (missing / "data/labedge/provenance.json").unlink()
    r = labedge("verify", str(missing))
    assert r.returncode == 1 and "provenance.json" in r.stdout


def test_status_json_reports_queue_age_spool_and_intake(tmp_path, run_agent):
    cfg, agent = _one_package(tmp_path, run_agent)
    wait_for(lambda: json.loads(labedge("status", "--json", "-c", str(cfg)).stdout)["agent"]["running"], 30,
             "the heartbeat")
    st = json.loads(labedge("status", "--json", "-c", str(cfg)).stdout)
    assert st["packages"] == {"queued": 1, "uploading": 0, "delivered": 0, "failed": 0, "superseded": 0}
    assert isinstance(st["oldest_queued_age_seconds"], (int, float)) and st["oldest_queued_age_seconds"] >= 0
    assert st["spool_bytes"] > 0 and st["intake"] == {"paused": False, "reason": None}
    assert st["offline"] is True and st["agent"]["mode"] == "offline"
    text = labedge("status", "-c", str(cfg)).stdout
    assert "1 queued" in text and "OFFLINE" in text
    assert run_agent.stop(agent) == [], "threads leaked"
    st = json.loads(labedge("status", "--json", "-c", str(cfg)).stdout)
    assert st["packages"]["queued"] == 1  # the queue is on disk: status works with the agent stopped


def test_init_writes_a_config_that_loads(tmp_path):
    out = tmp_path / "conf" / "labedge.toml"
    watch = tmp_path / "data"
    watch.mkdir()
    r = labedge("init", "--out", str(out), "--device-id", "smartlab-01", "--instrument-id", "smartlab",
                "--watch", str(watch))
    assert r.returncode == 0, r.stderr
    assert f"it watches {watch}" in r.stdout and "edit the" not in r.stdout, r.stdout  # --watch named it
    cfg = load_config(out)
    assert cfg.device_id == "smartlab-01" and cfg.instruments[0].id == "smartlab"
    assert cfg.instruments[0].watch == (watch,) and cfg.upload is None
    assert "#" in out.read_text()  # commented
    r = labedge("init", "--out", str(out))
    assert r.returncode == 2 and "already exists" in r.stderr and "Traceback" not in r.stderr
