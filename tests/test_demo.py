"""`labedge demo --once`: the newcomer's first command, run for real (mosquitto, receiver, agent)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent.demo import find_mosquitto
from agent.package.verify import verify_package

REPO = Path(__file__).resolve().parents[1]


def run_demo(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "agent", "demo", "--once", "--dir", str(tmp_path / "demo"),
                          "--timeout", "60", *args], capture_output=True, text=True, timeout=100, cwd=REPO,
                         env=env)
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    return out


def in_ci() -> bool:  # as tests/conftest.py (not importable by name: tests/transport has a conftest too)
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need_mosquitto() -> None:
    if find_mosquitto() is None:
        msg = "mosquitto is not installed (sudo apt-get install mosquitto)"
        if in_ci():
            pytest.fail(msg + "; CI=true requires it")
        pytest.skip(msg)


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def check_leftovers(demo: Path) -> None:
    """The demo stopped every child it started: nothing still runs from its folder."""
    if sys.platform.startswith("linux"):
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        assert str(demo) not in ps, "demo left processes running"


def test_demo_once_delivers_every_file_verified(tmp_path: Path) -> None:
    need_mosquitto()
    res = run_demo(tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    demo = tmp_path / "demo"
    dropped = int(re.search(r"dropped (\d+) ", res.stdout).group(1))
    assert dropped >= 2
    lines = [ln for ln in res.stdout.splitlines() if ln.strip().startswith("DELIVERED")]
    assert len(lines) == dropped and all("raw sha256 OK" in ln and "bag valid" in ln for ln in lines)
    stored = sorted(demo.glob("receiver/store/demo-pc/*/*/*"))
    assert len(stored) == dropped, stored  # exactly once each
    instrument_files = {sha(p): p.name for p in (demo / "instrument").iterdir()
                        if p.is_file() and not p.name.endswith(".sheet.json")}
    raw = {}
    for pkg in stored:
        assert verify_package(pkg).ok, verify_package(pkg).problems
        raw.update({sha(p): p.name for p in (pkg / "data" / "raw").rglob("*") if p.is_file()})
    assert instrument_files.items() <= raw.items(), "raw copies are not byte-identical to the dropped files"
    for what in ("labedge.toml", "receiver.toml", "mosquitto.conf", "logs", "store"):
        assert what in res.stdout
    check_leftovers(demo)
    # the agent's own view agrees
    st = subprocess.run([sys.executable, "-m", "agent", "status", "--json", "-c", str(demo / "pc" / "labedge.toml")],
                        capture_output=True, text=True, cwd=REPO)
    s = json.loads(st.stdout)
    assert s["packages"]["delivered"] == dropped and s["packages"]["queued"] == 0
    assert s["certificate"]["cn"] == "demo-pc" and s["certificate"]["warning"] is None
    # the administrator's side: fleet.toml, its own identity, and the command to try
    fleet_toml = demo / "admin" / "fleet.toml"
    assert f'labedge fleet status --config "{fleet_toml}"' in res.stdout
    assert (demo / "pki" / "certs" / "labedge-admin.pem").is_file()
    fl = subprocess.run([sys.executable, "-m", "agent", "fleet", "status", "--json", "-c", str(fleet_toml)],
                        capture_output=True, text=True, cwd=REPO)
    f = json.loads(fl.stdout)  # the demo's broker is gone: the catalog still knows the PC, and the note says why
    assert [d["device"] for d in f["devices"]] == ["demo-pc"] and f["broker_error"]


def test_demo_without_mosquitto_explains_and_queues(tmp_path: Path) -> None:
    env = {**os.environ, "LABEDGE_MOSQUITTO": ""}  # behave exactly as when mosquitto is not installed
    res = run_demo(tmp_path, "--bundled", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "sudo apt-get install mosquitto" in res.stdout and "mosquitto.org" in res.stdout
    assert "OFFLINE" in res.stdout
    queued = [ln for ln in res.stdout.splitlines() if ln.strip().startswith("QUEUED")]
    assert len(queued) == 2 and any("demo_si_powder.ras" in ln for ln in queued)
    assert not (tmp_path / "demo" / "receiver" / "store").exists()
    assert len(list((tmp_path / "demo" / "pc" / "spool").rglob("bagit.txt"))) == 2
    check_leftovers(tmp_path / "demo")


def test_demo_refuses_to_reuse_a_demo_folder(tmp_path: Path) -> None:
    (tmp_path / "demo" / "pc").mkdir(parents=True)
    (tmp_path / "demo" / "pc" / "labedge.toml").write_text("x")
    res = run_demo(tmp_path, "--offline")
    assert res.returncode == 2 and "already holds a demo" in res.stderr


def test_demo_report_while_the_agent_creates_its_database(tmp_path: Path) -> None:
    """Under load the demo read the state DB after the agent created the file but before its tables
    (`no such table: packages`, seen in the frozen-build test): that is "nothing yet", not a crash."""
    import sqlite3

    from agent.demo import Layout, _rows

    lay = Layout(tmp_path / "demo")
    lay.state.mkdir(parents=True)
    sqlite3.connect(lay.state / "state.sqlite3").execute("PRAGMA user_version=0").connection.close()
    assert _rows(lay) == []
