"""The PyInstaller one-folder build, built once per session and run like an administrator would.

Runs under CI=true (or LABEDGE_FROZEN_TEST=1; `.ci/run` sets it): the build takes ~30 s of the
machine's 2 cores, so it is not part of a developer's quick loop. Everything the Python package
can do must work from the frozen executable: every subcommand's --help, all translators loaded
through the `labedge.translators` entry points, translate, verify, the demo against mosquitto,
and check. The old spec failed here with `PackageNotFoundError: bagit`.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from testpaths import REPO, SAMPLES, in_ci, require_shared

ENABLED = in_ci() or os.environ.get("LABEDGE_FROZEN_TEST") == "1"
pytestmark = pytest.mark.skipif(not ENABLED, reason="frozen build runs under CI=true or LABEDGE_FROZEN_TEST=1")
EXE_NAME = "labedge.exe" if sys.platform == "win32" else "labedge"


@pytest.fixture(scope="session")
def frozen(tmp_path_factory) -> Path:
    """Build the one-folder executable once; return the path of `labedge` in it."""
    if shutil.which("pyinstaller", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("pyinstaller is not installed: it is in the test extras (pip install -e '.[test]')")
    out = tmp_path_factory.mktemp("frozen")
    spec = Path(os.environ.get("LABEDGE_FROZEN_SPEC") or REPO / "pyinstaller.spec")  # another spec: to compare builds
    res = subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
                          "--distpath", str(out / "dist"), "--workpath", str(out / "work"), str(spec)],
                         capture_output=True, text=True, timeout=900, cwd=spec.parent)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    exe = out / "dist" / "labedge" / EXE_NAME
    assert exe.is_file()
    return exe


def run(exe: Path, *args: str, timeout: float = 60, cwd: Path | None = None) -> subprocess.CompletedProcess:
    # A neutral cwd: the frozen executable must not find the checkout's packages by accident.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    res = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout,
                         cwd=cwd or exe.parent.parent, env=env)
    both = res.stdout + res.stderr
    assert "Traceback" not in both and "PackageNotFoundError" not in both, both
    assert "are unavailable" not in res.stderr, res.stderr  # a subsystem that failed to import
    return res


def command_paths() -> list[list[str]]:
    """Every (sub)command of the Python package's parser, e.g. ['pki', 'init']."""
    from agent.cli import build_parser

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> list[list[str]]:
        out = []
        for action in parser._actions:  # argparse has no public API to list subparsers
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    if name.startswith("_"):
                        continue  # internal children such as _translate-worker
                    out.append([*prefix, name])
                    out.extend(walk(child, [*prefix, name]))
        return out

    return walk(build_parser(), [])


def test_every_subcommand_help(frozen: Path) -> None:
    paths = command_paths()
    assert {"run", "verify", "demo", "receive", "translate", "service"} <= {p[0] for p in paths}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda p: (p, run(frozen, *p, "--help")), paths))
    for path, res in results:
        assert res.returncode == 0, f"labedge {' '.join(path)} --help: {res.stderr}"
        assert res.stdout.startswith(f"usage: labedge {' '.join(path)}"), res.stdout[:200]


def test_translators_lists_every_entry_point(frozen: Path) -> None:
    expected = {ep.name for ep in metadata.entry_points(group="labedge.translators")}
    assert len(expected) >= 18
    res = run(frozen, "translators", "--json")
    assert res.returncode == 0, res.stderr
    listed = {t["name"]: t for t in json.loads(res.stdout)}
    assert set(listed) == expected
    broken = {n: t["error"] for n, t in listed.items() if not t["loaded"]}
    assert not broken, broken


def test_translate_a_real_sample_as_the_package_does(frozen: Path, tmp_path: Path) -> None:
    sample = require_shared(SAMPLES) / "rigaku_xrd" / "XRD_RIGAKU.ras"
    res = run(frozen, "translate", str(sample), "--out", str(tmp_path / "frozen"), timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "translator rigaku" in res.stdout, res.stdout
    ref = subprocess.run([sys.executable, "-m", "agent", "translate", str(sample), "--out", str(tmp_path / "package")],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert ref.returncode == 0, ref.stderr
    got, want = tmp_path / "frozen" / sample.name / "data", tmp_path / "package" / sample.name / "data"
    files = sorted(str(f.relative_to(want)) for f in want.rglob("*") if f.is_file())
    assert "meta/metadata.json" in files and "structured/XRD_RIGAKU.csv" in files, files
    assert sorted(str(f.relative_to(got)) for f in got.rglob("*") if f.is_file()) == files
    for rel in ("raw/XRD_RIGAKU.ras", "meta/metadata.json", "structured/XRD_RIGAKU.csv"):
        assert (got / rel).read_bytes() == (want / rel).read_bytes(), rel


def test_demo_then_verify_and_check(frozen: Path, tmp_path: Path) -> None:
    from agent.demo import find_mosquitto

    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed (.ci/run installs it)")
    demo = tmp_path / "demo"
    res = run(frozen, "demo", "--once", "--dir", str(demo), "--timeout", "60", timeout=100)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "All arrived verified" in res.stdout, res.stdout
    bags = sorted(p for p in demo.glob("receiver/store/demo-pc/*/*/*") if (p / "bagit.txt").is_file())
    assert bags, res.stdout

    res = run(frozen, "verify", *map(str, bags))
    assert res.returncode == 0 and res.stdout.count("OK ") == len(bags), res.stdout + res.stderr
    victim = next(f for f in (bags[0] / "data").rglob("*") if f.is_file())
    victim.write_bytes(victim.read_bytes() + b"tampered")
    res = run(frozen, "verify", str(bags[0]))
    assert res.returncode == 1 and "BAD" in res.stdout, res.stdout + res.stderr

    config = demo / "pc" / "labedge.toml"
    res = run(frozen, "check", "--config", str(config))
    assert res.returncode == 0, res.stdout + res.stderr
    res = run(frozen, "status", "--config", str(config), "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["packages"]["delivered"] == len(bags), res.stdout
    broken = config.with_name("broken.toml")
    broken.write_text(config.read_text("utf-8").replace(str(demo / "instrument").replace("\\", "/"),
                                                        str(demo / "no-such-folder")), "utf-8")
    res = run(frozen, "check", "--config", str(broken))
    assert res.returncode != 0 and "no-such-folder" in res.stdout + res.stderr, res.stdout + res.stderr


def test_every_package_data_file_is_in_the_build(frozen: Path) -> None:
    """Schemas, sheet templates, page assets, mapping tables, the unit and WinSW templates..."""
    import subprocess as sp

    from testpaths import REPO as repo
    tracked = sp.run(["git", "ls-files"], capture_output=True, text=True, cwd=repo, check=True).stdout.split()
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    find = tomllib.loads((repo / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]["packages"]["find"]
    packages = {p.rstrip("*.") for p in find["include"]}
    assert {"agent", "facility", "wire", "installer"} <= packages
    data = [f for f in tracked if f.split("/")[0] in packages and not f.endswith((".py", ".pyc"))]
    assert any(f.endswith("labedge.service") for f in data) and any(f.endswith(".schema.json") for f in data)
    internal = frozen.parent / "_internal"
    missing = [f for f in data if not (internal / f).is_file()]
    assert not missing, missing


def _tray_desktop_module():  # the Xvfb + trayer fixture and the icon finder of tests/tray, not a copy
    import importlib.util

    path = REPO / "tests" / "tray" / "test_tray_desktop.py"
    spec = importlib.util.spec_from_file_location("_labedge_tray_desktop", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_desk = _tray_desktop_module()
desktop = _desk.desktop  # fixture


def test_frozen_tray_shows_the_service_status_file(frozen: Path, tmp_path: Path, desktop) -> None:
    """`labedge tray --system` from the build, on a virtual desktop: it docks (pystray's X11 backend
    is in the build) and its name is what tray_state makes of the service's status.json."""
    import threading

    from Xlib import display

    from agent.machine import ENV_ROOT, system_paths
    from agent.status_file import write_status_file
    from agent.summary import user_language
    from tray.state import tray_state

    root = tmp_path / "root"
    env = {**os.environ, ENV_ROOT: str(root), "DISPLAY": desktop}
    os.environ[ENV_ROOT] = str(root)
    try:
        sp = system_paths()
    finally:
        del os.environ[ENV_ROOT]
    sp.config_dir.mkdir(parents=True)
    sp.base_dir.mkdir(parents=True, exist_ok=True)
    sp.config_file.write_text('config_version = 1\ndevice_id = "pc-01"\nmode = "system"\n[[instruments]]\n'
                              f'id = "x"\nwatch = ["{tmp_path.as_posix()}"]\n', "utf-8")
    status = {"device_id": "pc-01", "agent": {"running": True, "mode": "online"},
              "packages": {"queued": 3, "uploading": 0, "delivered": 7, "failed": 0},
              "upload": {"connected": True}, "problems": [], "intake": {"paused": False}}
    lang = user_language()  # the frozen tray gets the same environment
    want = tray_state(status, lang).title
    assert want != tray_state({"agent": {"running": False}}, lang).title
    stop = threading.Event()

    def publish() -> None:  # the service rewrites it every 2 s; stale files show as "not running"
        while not stop.is_set():
            write_status_file(sp.status_file, status)
            stop.wait(1.0)
    writer = threading.Thread(target=publish, daemon=True)
    writer.start()
    log = tmp_path / "tray.log"
    with open(log, "wb") as fh:
        tray = subprocess.Popen([str(frozen), "tray", "--system"], env=env, stdout=fh, stderr=subprocess.STDOUT)
    d = display.Display(desktop)
    try:
        icon = _desk.wait_for(lambda: _desk._icon(d), 30, "the frozen tray to dock")
        _desk.wait_for(lambda: want[:24] in icon.get_wm_name(), 20, f"the icon's name to say {want!r}")
        assert tray.poll() is None, log.read_text(errors="replace")
    finally:
        stop.set()
        tray.terminate()
        tray.wait(20)
        d.close()
    assert "Traceback" not in log.read_text(errors="replace")


def test_setup_commands_work_frozen(frozen: Path, tmp_path: Path) -> None:
    """What an administrator runs first, from the build: init, check, enroll, pki, sheet pages.
    Each reads package data or metadata the Python package finds on disk (templates, schemas, assets)."""
    from agent.sheets.templates import list_templates

    cfg = tmp_path / "labedge.toml"
    (tmp_path / "instrument").mkdir()
    res = run(frozen, "init", "--out", str(cfg), "--watch", str(tmp_path / "instrument"))
    assert res.returncode == 0 and cfg.is_file(), res.stdout + res.stderr
    assert run(frozen, "check", "--config", str(cfg)).returncode == 0
    (tmp_path / "instrument").rmdir()
    res = run(frozen, "check", "--config", str(cfg))
    assert res.returncode == 2 and "instrument" in res.stderr, res.stdout + res.stderr

    res = run(frozen, "pki", "init", "--out", str(tmp_path / "ca"))
    assert res.returncode == 0 and (tmp_path / "ca" / "ca.pem").is_file(), res.stderr
    res = run(frozen, "enroll", "--name", "pc-01", "--out", str(tmp_path / "pki"))
    assert res.returncode == 0 and (tmp_path / "pki" / "pc-01.csr").is_file(), res.stderr
    res = run(frozen, "pki", "sign-csr", "--ca", str(tmp_path / "ca"), "--csr", str(tmp_path / "pki" / "pc-01.csr"),
              "--out", str(tmp_path / "pki"))
    assert res.returncode == 0 and (tmp_path / "pki" / "pc-01.pem").is_file(), res.stderr

    names = list_templates()
    assert len(names) >= 5
    res = run(frozen, "sheet", "list")
    assert res.returncode == 0 and all(n in res.stdout for n in names), res.stdout
    page = tmp_path / "xrd.html"
    res = run(frozen, "sheet", "html", "--template", "xrd-powder", "--out", str(page))
    assert res.returncode == 0, res.stderr
    ref = tmp_path / "ref.html"
    subprocess.run([sys.executable, "-m", "agent", "sheet", "html", "--template", "xrd-powder", "--out", str(ref)],
                   check=True, cwd=REPO, capture_output=True, timeout=60)
    import re

    def same(text: str) -> str:  # each page gets a fresh CSP nonce
        return re.sub(r'nonce(-|=")[A-Za-z0-9_+/=-]+', "nonce", text)
    assert same(page.read_text("utf-8")) == same(ref.read_text("utf-8"))  # the same inline assets and template
    assert len(page.read_text("utf-8")) > 10000
