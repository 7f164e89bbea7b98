"""One agent per state folder and device id, and a `status` a person or a script can trust."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from core_helpers import REPO, db_packages, labedge, wait_for
from diskfull import fill, mount_tmpfs, unmount
from exact_helpers import Run, agent_cfg, status


def test_second_agent_on_one_config_exits_2_naming_the_first_and_files_ship_once(tmp_path):
    cfg = agent_cfg(tmp_path)
    first = Run(cfg).wait_running()
    try:
        second = Run(cfg)
        assert second.proc.wait(30) == 2, second.text()
        out = second.text()
        assert f"PID {first.pid}" in out and str(cfg) in out and "already running" in out, out
        assert "Traceback" not in out and "8765" not in out  # not the old "cannot listen" advice
        for i in range(3):
            (tmp_path / "watch" / f"scan{i}.ras").write_bytes(b"*RAS_DATA_START\n%d 1\n" % i)
        db = tmp_path / "state" / "state.sqlite3"
        wait_for(lambda: len(db_packages(db)) >= 3, 30, "three packages")
        third = Run(cfg)  # a racing start while files flow is refused too
        assert third.proc.wait(30) == 2
    finally:
        assert first.stop() == 0
    assert len(db_packages(db)) == 3


def test_kill_9_leaves_no_stale_lock_and_status_says_not_running_at_once(tmp_path):
    cfg = agent_cfg(tmp_path)
    first = Run(cfg).wait_running()
    rc, st = status(cfg)
    assert rc == 0 and st["agent"]["running"] and st["agent"]["pid"] == first.pid, st
    first.stop(signal.SIGKILL)
    rc, st = status(cfg)  # the heartbeat is < 1 s old here: liveness must come from the lock
    assert rc == 3 and st["agent"]["running"] is False, st
    assert st["agent"]["heartbeat_age_seconds"] is not None and st["agent"]["heartbeat_age_seconds"] < 10
    second = Run(cfg).wait_running(15)
    assert second.stop() == 0


def test_same_device_id_from_two_state_folders_is_refused(tmp_path):
    a = agent_cfg(tmp_path / "a")
    b = agent_cfg(tmp_path / "b")  # same device_id (test-pc-01), its own state folder and spool
    first = Run(a).wait_running()
    try:
        second = Run(b)
        assert second.proc.wait(30) == 2
        out = second.text()
        assert "device id 'test-pc-01' is already used" in out and f"PID {first.pid}" in out, out
        assert str(a) in out and str(tmp_path / "a" / "state") in out, out
    finally:
        assert first.stop() == 0


def test_status_exit_codes_page_address_and_a_closed_pipe(tmp_path):
    cfg = agent_cfg(tmp_path, web_port=0)
    rc, st = status(cfg)
    assert rc == 3 and not st["agent"]["running"]
    bad = tmp_path / "bad.toml"
    bad.write_text("device_id = 'x'\n[[instruments]]\n")
    assert labedge("status", "-c", str(bad)).returncode == 2
    agent = Run(cfg).wait_running()
    try:
        rc, st = wait_for(lambda: (lambda r: r if r[1].get("page") and r[1]["page"].endswith(":0/") is False
                                   else None)(status(cfg)), 30, "the page address")
        assert rc == 0 and st["page"].startswith("http://127.0.0.1:"), st
        text = labedge("status", "-c", str(cfg)).stdout
        assert f"local page: {st['page']}" in text and f"PID {agent.pid}" in text, text
        # a problem while running: the watch folder disappears (a share goes offline)
        (tmp_path / "watch").rename(tmp_path / "gone")
        rc, st = status(cfg)
        assert rc == 1 and any("does not exist" in p["message"] for p in st["problems"]), st
        (tmp_path / "gone").rename(tmp_path / "watch")
        for args in (["--json"], []):
            piped = subprocess.run(f"{sys.executable} -m agent status {' '.join(args)} -c '{cfg}' | head -c 10",
                                   shell=True, cwd=REPO, capture_output=True, text=True, timeout=60)
            assert len(piped.stdout) == 10 and piped.stderr == "", piped.stderr
    finally:
        assert agent.stop() == 0
    assert status(cfg)[0] == 3


def test_default_state_folder_is_per_config(tmp_path):
    from agent.config import load_config
    for name in ("a.toml", "b.toml"):
        (tmp_path / name).write_text(f'device_id = "pc"\n[[instruments]]\nid = "x"\nwatch = ["{tmp_path}"]\n')
    a, b = load_config(tmp_path / "a.toml"), load_config(tmp_path / "b.toml")
    assert a.state_dir != b.state_dir and a.spool_dir != b.spool_dir and a.log_dir != b.log_dir
    assert "a-" in a.state_dir.name and load_config(tmp_path / "a.toml").state_dir == a.state_dir


@pytest.mark.skipif(os.geteuid() != 0, reason="a real full disk needs a tmpfs mount (root)")
def test_status_at_a_full_disk_says_running_and_paused(tmp_path):
    disk = tmp_path / "disk"
    assert mount_tmpfs(disk, "4m")
    try:
        cfg = agent_cfg(tmp_path, state=disk / "state", spool=disk / "spool")
        cfg.write_text(cfg.read_text().replace('device_id =', 'min_free_bytes = 65536\ndevice_id =', 1))
        agent = Run(cfg).wait_running()
        try:
            fill(disk, 0)
            rc, st = wait_for(lambda: (lambda r: r if r[1]["intake"]["paused"] else None)(status(cfg)), 30,
                              "status to say intake is paused")
            assert rc == 1 and st["agent"]["running"] and st["agent"]["pid"] == agent.pid, st
            assert "low disk" in st["intake"]["reason"] and str(disk / "spool") in st["intake"]["reason"], st
        finally:
            assert agent.stop() == 0
    finally:
        unmount(disk)


def test_a_hung_agent_is_running_with_a_problem(tmp_path):
    """SIGSTOP: the lock stays held (running) but nothing is written: exit 1 and it says why."""
    cfg = agent_cfg(tmp_path)
    agent = Run(cfg).wait_running()
    try:
        assert status(cfg)[0] == 0  # just started, heartbeat fresh: no problem
        agent.proc.send_signal(signal.SIGSTOP)
        rc, st = wait_for(lambda: (lambda r: r if r[0] == 1 else None)(status(cfg)), 30, "the stale state")
        assert st["agent"]["running"] and any("has not written its state" in p["message"] for p in st["problems"])
    finally:
        agent.proc.send_signal(signal.SIGCONT)
        assert agent.stop() == 0


def test_another_users_lock_file_still_excludes(tmp_path):
    """A lock file this user cannot write (another user's, mode 0644 in a shared folder): a
    read-only handle still takes part in the lock. The child obeys file modes (root without
    CAP_DAC_OVERRIDE, as in test_core_badinput)."""
    from agent.oslock import FileLock
    from test_check import _as_user

    path = tmp_path / "labedge-device-x.lock"
    mine = FileLock(path, mode=0o644)
    mine.acquire({"pid": os.getpid(), "config": "first.toml"})
    os.chmod(path, 0o444)  # as if another user owned it: this child may only read it
    child = ("import sys; from pathlib import Path; from agent.oslock import FileLock, LockHeld\n"
             "l = FileLock(Path(sys.argv[1]))\n"
             "try:\n    l.acquire({}, wait=0.2)\nexcept LockHeld as e:\n    print('HELD', e.holder['config']); sys.exit(0)\n"
             "print('TAKEN')\n")
    run = lambda: subprocess.run([sys.executable, "-c", child, str(path)], cwd=REPO, capture_output=True, text=True,
                                 timeout=30, **_as_user())
    r = run()
    assert r.stdout.strip() == "HELD first.toml", r.stdout + r.stderr
    mine.release()
    r = run()
    assert r.stdout.strip() == "TAKEN", r.stdout + r.stderr
