"""Machine-wide mode: the agent as a service (temp root via LABEDGE_SYSTEM_ROOT), its private state,
spool and key, and the status every other local user (the tray in their session) can read."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import load_config
from agent.machine import ENV_ROOT, prepare_service_dirs, system_paths
from agent.permissions import ADMINS_SID, SYSTEM_SID, USERS_SID, PosixPermissions, WindowsAcl
from agent.transport.enroll import make_key_and_csr
from deploy_helpers import OTHER_USER, REPO, as_user, mode, user_env, need_root, open_root, remove_root, run_as, wait_for
from testpaths import SAMPLES, require_shared

CONFIG = """config_version = 1
device_id = "pc-01"
mode = "system"
rescan_seconds = 1
[web]
enabled = false
[[instruments]]
id = "xrd-01"
watch = ["{watch}"]
settle_seconds = 0.3
unpaired_policy = "send"
hold_seconds = 0
"""

OTHER_USER_READS = """
import json, os, sys
from pathlib import Path
from tray.source import source_for
from agent.config import load_config
from agent.machine import system_paths
from tray.app import TrayController
sp = system_paths()
cfg = load_config(sp.config_file, check_watch_folders=False)
st = source_for(cfg).status()
ctl = TrayController(cfg, opener=lambda url: None)  # what `labedge tray --system` drives
tray = {"title": ctl.state().title, "paused": ctl.is_paused(), "url": ctl.page_url()}
def denied(p):
    try:
        Path(p).read_bytes() if Path(p).is_file() else os.listdir(p)
        return False
    except PermissionError:
        return True
print(json.dumps({"running": st["agent"]["running"], "note": st["agent"].get("note"),
                  "packages": st.get("packages"), "uid": os.getuid(), "tray": tray,
                  "denied": {name: denied(p) for name, p in json.loads(sys.argv[1]).items()}}))
"""


def test_system_paths_per_os(monkeypatch) -> None:
    monkeypatch.setenv(ENV_ROOT, "/r")
    lin = system_paths("linux")
    assert (lin.config_file, lin.state_dir, lin.spool_dir, lin.log_dir, lin.status_file) == (
        Path("/r/etc/labedge/labedge.toml"), Path("/r/var/lib/labedge/state"), Path("/r/var/lib/labedge/spool"),
        Path("/r/var/log/labedge"), Path("/r/var/lib/labedge/status.json"))
    monkeypatch.setenv(ENV_ROOT, "/pd")
    win = system_paths("win32")
    assert [p.relative_to("/pd/labedge").as_posix() for p in (win.config_dir, win.state_dir, win.spool_dir, win.log_dir)] \
        == ["config", "state", "spool", "log"]
    monkeypatch.delenv(ENV_ROOT)
    assert system_paths("linux").state_dir == Path("/var/lib/labedge/state")


def test_mode_system_in_config_or_flag(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(ENV_ROOT, str(tmp_path / "root"))
    cfg_file = tmp_path / "labedge.toml"
    cfg_file.write_text(CONFIG.format(watch=tmp_path.as_posix()), "utf-8")
    cfg = load_config(cfg_file)
    assert cfg.mode == "system" and cfg.state_dir == tmp_path / "root/var/lib/labedge/state"
    assert cfg.status_file == tmp_path / "root/var/lib/labedge/status.json"
    cfg_file.write_text(CONFIG.replace('mode = "system"\n', 'spool_dir = "mine"\n').format(watch=tmp_path.as_posix()))
    user = load_config(cfg_file)
    assert user.mode == "user" and user.status_file is None and tmp_path / "root" not in user.state_dir.parents
    flagged = load_config(cfg_file, system=True)
    assert flagged.mode == "system" and flagged.log_dir == tmp_path / "root/var/log/labedge"
    assert flagged.spool_dir == tmp_path / "mine"  # an explicit key still wins


def test_windows_acl_keeps_users_out_of_private_folders(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    acl = WindowsAcl(run=calls.append)
    acl.private_dir(tmp_path / "state")
    acl.private_file(tmp_path / "device.key")
    acl.readable_dir(tmp_path)
    acl.readable_file(tmp_path / "status.json")
    private_dir, private_file, readable_dir, readable_file = calls
    for argv in calls:
        assert argv[0] == "icacls" and "/inheritance:r" in argv
        assert any(a.startswith(SYSTEM_SID + ":") for a in argv) and any(a.startswith(ADMINS_SID + ":") for a in argv)
    assert not any(USERS_SID in a for a in private_dir + private_file)
    assert f"{USERS_SID}:(OI)(CI)RX" in readable_dir and f"{USERS_SID}:R" in readable_file
    assert f"{SYSTEM_SID}:(OI)(CI)F" in private_dir and f"{SYSTEM_SID}:F" in private_file


@pytest.fixture()
def root():
    r = open_root()
    yield r
    remove_root(r)


def test_service_state_is_private_and_any_user_sees_the_status(root: Path) -> None:
    need_root()
    sample = require_shared(SAMPLES) / "rigaku_xrd" / "XRD_RIGAKU.ras"
    env = {**os.environ, ENV_ROOT: str(root)}
    os.environ[ENV_ROOT] = str(root)
    try:
        sp = system_paths()
    finally:
        del os.environ[ENV_ROOT]
    watch = root / "data" / "xrd"
    watch.mkdir(parents=True)
    sp.config_dir.mkdir(parents=True)
    sp.config_file.write_text(CONFIG.format(watch=watch.as_posix()), "utf-8")
    key, _csr = make_key_and_csr("pc-01", sp.pki_dir)
    key.chmod(0o644)  # as an administrator might leave a copied key: install must tighten it
    os.environ[ENV_ROOT] = str(root)
    try:
        cfg = load_config(sp.config_file)
        prepare_service_dirs(cfg, PosixPermissions(owner="root"), key_files=(key,), installing=True)  # as install does
    finally:
        del os.environ[ENV_ROOT]
    assert (mode(key), mode(sp.pki_dir)) == (0o600, 0o700)

    log = root / "agent.log"
    with open(log, "wb") as fh:
        agent = subprocess.Popen([sys.executable, "-m", "agent", "run", "--system"], cwd=REPO, env=env,
                                 stdout=fh, stderr=subprocess.STDOUT)
    try:
        def status() -> dict | None:
            try:
                return json.loads(sp.status_file.read_text("utf-8"))["status"]
            except (OSError, ValueError):
                return None
        wait_for(lambda: (status() or {}).get("agent", {}).get("running"), 30, "the status file says running")
        shutil.copy2(sample, watch / sample.name)
        wait_for(lambda: (status() or {}).get("packages", {}).get("queued") == 1, 30,
                 "the measurement queued in the status file")
        assert (mode(sp.state_dir), mode(sp.spool_dir), mode(sp.log_dir)) == (0o700, 0o700, 0o700)
        assert (mode(sp.base_dir), mode(sp.status_file)) == (0o755, 0o644)
        assert (sp.state_dir / "state.sqlite3").is_file() and (sp.log_dir / "labedge.log").is_file()

        secrets = {"key": str(key), "state_db": str(sp.state_dir / "state.sqlite3"),
                   "spool": str(sp.spool_dir), "log": str(sp.log_dir)}
        seen = run_as(OTHER_USER, OTHER_USER_READS, env, json.dumps(secrets))
        assert seen["uid"] != 0 and seen["running"] is True and seen["packages"]["queued"] == 1, seen
        assert all(seen["denied"].values()), seen["denied"]
        from agent.status_file import read_status_file
        from agent.summary import user_language
        from tray.state import tray_state
        lang = user_language()  # the child has the same environment
        want = tray_state(read_status_file(sp.status_file), lang).title
        assert want != tray_state({"agent": {"running": False}}, lang).title
        assert seen["tray"]["title"] == want, seen["tray"]
        assert seen["tray"]["paused"] is False and seen["tray"]["url"].startswith("http://127.0.0.1:")
        python, user_environ = user_env(env)
        res = subprocess.run([python, "-m", "agent", "status", "--system"], capture_output=True, text=True,
                             cwd=REPO, env=user_environ, timeout=30, preexec_fn=as_user(OTHER_USER))
        assert res.returncode == 0 and "1 queued" in res.stdout and "agent: running" in res.stdout, res.stdout + res.stderr
    finally:
        agent.send_signal(signal.SIGTERM)
        rc = agent.wait(30)
    assert rc == 0, log.read_text()
    after = run_as(OTHER_USER, OTHER_USER_READS, env, "{}")
    assert after["running"] is False and "stopped" in (after["note"] or ""), after



def test_root_does_not_run_the_agent_in_the_service_accounts_folders(root: Path) -> None:
    """Files root made in the service's state DB folder would lock the service out of it."""
    need_root()
    import pwd

    env = {**os.environ, ENV_ROOT: str(root)}
    os.environ[ENV_ROOT] = str(root)
    try:
        sp = system_paths()
    finally:
        del os.environ[ENV_ROOT]
    (root / "data").mkdir()
    sp.config_dir.mkdir(parents=True)
    sp.config_file.write_text(CONFIG.format(watch=(root / "data").as_posix()), "utf-8")
    sp.state_dir.mkdir(parents=True)
    nobody = pwd.getpwnam(OTHER_USER)
    os.chown(sp.state_dir, nobody.pw_uid, nobody.pw_gid)
    res = subprocess.run([sys.executable, "-m", "agent", "run", "--system"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 2 and f"belongs to the service account {OTHER_USER!r}" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and list(sp.state_dir.iterdir()) == []
