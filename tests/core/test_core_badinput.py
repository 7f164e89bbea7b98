"""Bad input gets a clear error and the agent keeps running."""
from __future__ import annotations

import errno
import json
import logging
import os
import signal

import pytest
from diskfull import fill, mount_tmpfs, unmount
from core_helpers import (run_agent,  # noqa: F401 - fixture
                          db_packages, instrument, labedge, package_dirs, packages_with, sha256_of,
                          start_agent_process, status_json, wait_for, write_config)

import agent.package.builder as builder
from agent.package.verify import verify_package
from agent.status import build_status

# -- bad configuration ---------------------------------------------------------------------

BAD_CONFIGS = {
    # name: (text after the valid header, strings the message must contain)
    "unknown-instrument-key": ('[[instruments]]\nid = "smartlab"\nwatch = ["{w}"]\nsetle_seconds = 5\n',
                               ["setle_seconds", "smartlab", "allowed here"]),
    "unknown-top-key": ('spool_max_byte = 5\n[[instruments]]\nid = "smartlab"\nwatch = ["{w}"]\n',
                        ["spool_max_byte", "allowed here"]),
    "wrong-type": ('[[instruments]]\nid = "smartlab"\nwatch = ["{w}"]\nsettle_seconds = "fast"\n',
                   ["settle_seconds", "smartlab", "number", "fast"]),
    "bad-enum": ('[[instruments]]\nid = "smartlab"\nwatch = ["{w}"]\ngroup = "sidecar"\n',
                 ["group", "smartlab", "'stem'"]),
    "bad-toml": ('[[instruments]]\nid = "smartlab\nwatch = ["{w}"]\n', ["not valid TOML", "line 6"]),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_one_clear_line_and_exit_2(tmp_path, case):
    text, must = BAD_CONFIGS[case]
    cfg = tmp_path / "labedge.toml"
    cfg.write_text(f'device_id = "pc-1"\nstate_dir = "{tmp_path}/state"\n[web]\nenabled = false\n'
                   + text.format(w=tmp_path), encoding="utf-8")
    for cmd in (["run", "-c", str(cfg)], ["status", "--json", "-c", str(cfg)]):
        r = labedge(*cmd)
        assert r.returncode == 2, (cmd, r.returncode, r.stderr)
        assert "Traceback" not in r.stderr and r.stdout == ""
        assert r.stderr.startswith("labedge: configuration error: " + str(cfg)), r.stderr
        for s in must:
            assert s in r.stderr, f"{case}: {s!r} not in {r.stderr!r}"
    assert not (tmp_path / "state").exists(), "nothing may start with a bad config"


def test_missing_watch_folder_stops_run_but_not_status(tmp_path):
    gone = tmp_path / "D_drive" / "SmartLab" / "Data"
    cfg = write_config(tmp_path, [instrument(gone, iid="smartlab")])
    r = labedge("run", "-c", str(cfg))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "smartlab" in r.stderr and "watch" in r.stderr and str(gone) in r.stderr, r.stderr
    # status only reads the queue: it must still answer while a share is offline, and say why
    # `run` refuses (exit 2: the agent is not running and this config would not start)
    r = labedge("status", "--json", "-c", str(cfg))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert any(str(gone) in p["message"] for p in json.loads(r.stdout)["problems"]), r.stdout


# -- unreadable, vanishing and changing files ----------------------------------------------

def _without_dac_override() -> None:
    """preexec for a root child: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding
    set, so after exec root obeys file modes like any user (a mode-000 file is unreadable)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_unreadable_file_is_reported_and_taken_once_readable(tmp_path):
    """chmod 000 blocks everyone except root; as root the agent child runs without the
    capabilities that bypass file modes: the real permission check, not a simulation."""
    kw = {"preexec_fn": _without_dac_override} if os.geteuid() == 0 else {}
    base = tmp_path
    watch = base / "watch"
    watch.mkdir()
    os.chmod(watch, 0o755)
    cfg = write_config(base, [instrument(watch)])
    os.chmod(cfg, 0o644)
    bad, good = watch / "locked.ras", watch / "open.ras"
    bad.write_bytes(b"locked data")
    os.chmod(bad, 0)
    proc = start_agent_process(cfg, base / "out.log", **kw)
    try:
        db = base / "state" / "state.sqlite3"
        wait_for(lambda: db.exists() and status_json(cfg)["agent"]["running"], 30, "the agent to start")
        good.write_bytes(b"open data")
        wait_for(lambda: packages_with(db, good), 30, "the readable file's package")

        def reported():
            return [p["message"] for p in status_json(cfg)["problems"] if str(bad) in p["message"]]
        msgs = wait_for(reported, 30, "a problem naming the unreadable file")
        assert "cannot be opened for reading" in msgs[0] and "permissions" in msgs[0]
        assert proc.poll() is None and not packages_with(db, bad)
        os.chmod(bad, 0o644)
        wait_for(lambda: packages_with(db, bad), 30, "the file's package once readable")
        wait_for(lambda: not reported(), 30, "the problem to clear")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, (base / "out.log").read_text()[-2000:]
    assert len(db_packages(db)) == 2
    assert all(verify_package(d).ok for d in package_dirs(base / "spool"))


def test_file_vanishing_or_changing_between_settle_and_copy(tmp_path, run_agent, monkeypatch, caplog):
    watch = tmp_path / "watch"
    watch.mkdir()
    real_copy = builder.copy_and_hash
    changed_once = []

    def racing_copy(src, dest, **kw):
        # The instrument software acts in the gap between "settled" and our copy.
        if src.name == "vanishing.ras":
            src.unlink()
        if src.name == "rewritten.ras" and not changed_once:
            src.write_bytes(b"rewritten: the final content, longer than before")
            changed_once.append(1)
        return real_copy(src, dest, **kw)

    monkeypatch.setattr(builder, "copy_and_hash", racing_copy)
    cfg = write_config(tmp_path, [instrument(watch)])
    caplog.set_level(logging.WARNING)
    agent = run_agent(cfg)
    db = agent.cfg.state_db
    (watch / "vanishing.ras").write_bytes(b"here for a moment")
    rewritten = watch / "rewritten.ras"
    rewritten.write_bytes(b"first content")
    wait_for(lambda: packages_with(db, rewritten), 30, "the rewritten file's package")
    after = watch / "after.ras"
    after.write_bytes(b"the agent carries on")
    wait_for(lambda: packages_with(db, after), 30, "a later file's package")
    assert "vanishing.ras: vanished before it could be copied" in caplog.text
    assert "rewritten.ras: changed after it settled" in caplog.text
    rows = packages_with(db, rewritten)
    assert len(rows) == 1 and rows[0]["sha256"] == sha256_of(rewritten), "the settled, final content only"
    assert len(db_packages(db)) == 2 and not packages_with(db, watch / "vanishing.ras")
    assert list((agent.cfg.spool_dir / "tmp").iterdir()) == []
    assert all(t.is_alive() for t in agent.threads)


# -- full spool and full disk --------------------------------------------------------------

def _deliver(agent, package_id):
    """What the uploader does once the receiver acked: mark delivered, free the space."""
    agent.store.set_state(package_id, "delivered")
    agent.spool.release(package_id)


def test_full_spool_pauses_intake_loudly_and_resumes(tmp_path, run_agent):
    watch = tmp_path / "watch"
    watch.mkdir()
    cfg = write_config(tmp_path, [instrument(watch)], spool_max_bytes=1024 * 1024, min_free_bytes=0)
    agent = run_agent(cfg)
    names = [f"m{i}.ras" for i in range(3)]
    for n in names:
        (watch / n).write_bytes(os.urandom(400 * 1024))
    wait_for(lambda: len(db_packages(agent.cfg.state_db)) == 2, 30, "two packages (what fits)")

    def paused():
        st = build_status(agent.cfg)
        return st["intake"]["paused"] and st["intake"]["reason"]
    reason = wait_for(paused, 30, "status to say intake is paused")
    assert reason.startswith("spool full") and "spool_max_bytes" in reason and "delivered" in reason
    assert agent.pipeline.pending() == 1, "the third measurement waits; nothing is dropped"
    st = build_status(agent.cfg)
    assert st["spool_bytes"] > 800 * 1024 and st["packages"]["queued"] == 2
    _deliver(agent, db_packages(agent.cfg.state_db)[0]["id"])
    wait_for(lambda: len(db_packages(agent.cfg.state_db)) == 3, 30, "intake to resume after a delivery")
    wait_for(lambda: not build_status(agent.cfg)["intake"]["paused"], 30, "the pause to clear in status")
    assert all(len(packages_with(agent.cfg.state_db, watch / n)) == 1 for n in names)


def test_full_disk_pauses_intake_and_loses_nothing(tmp_path, run_agent, monkeypatch):
    """A real full disk: a small tmpfs holding the spool AND the state DB (as on a PC where both
    live on C:). Without root (no mount) the ENOSPC comes from a fault hook in the copy instead."""
    disk = tmp_path / "disk"
    real = mount_tmpfs(disk, "6m")
    if not real:
        disk.mkdir(exist_ok=True)
        full = [True]
        real_copy = builder.copy_and_hash

        def enospc_copy(src, dest, **kw):
            if full[0] and src.name == "big.ras":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dest))
            return real_copy(src, dest, **kw)
        monkeypatch.setattr(builder, "copy_and_hash", enospc_copy)
    try:
        watch = tmp_path / "watch"
        watch.mkdir()
        cfg = write_config(tmp_path, [instrument(watch)], spool_dir=disk / "spool", state_dir=disk / "state",
                           min_free_bytes=0)
        agent = run_agent(cfg)
        db = agent.cfg.state_db
        first = watch / "first.ras"
        first.write_bytes(b"x" * 1000)
        wait_for(lambda: packages_with(db, first), 30, "a package while there is room")
        ballast = fill(disk, 1024 * 1024 + 8192) if real else None
        big = watch / "big.ras"
        big.write_bytes(os.urandom(1024 * 1024))   # fits on its own, but not with its package files

        def reason():
            r = agent.health.get("intake_paused")
            return r if r and "disk full" in r else None
        msg = wait_for(reason, 30, "intake to pause for the full disk")
        assert str(agent.cfg.spool_dir) in msg and "space is freed" in msg
        assert all(t.is_alive() for t in agent.threads), "every agent thread survives the full disk"
        assert agent.pipeline.pending() == 1 and not packages_with(db, big)
        if real:
            ballast.unlink()
        else:
            full[0] = False
        wait_for(lambda: packages_with(db, big), 60, "the package once space is free")
        wait_for(lambda: not agent.health.get("intake_paused"), 30, "intake to resume")
        wait_for(lambda: not build_status(agent.cfg)["intake"]["paused"], 30, "status to show intake resumed")
        assert len(db_packages(db)) == 2
        dirs = package_dirs(agent.cfg.spool_dir)
        assert len(dirs) == 2 and all(verify_package(d).ok for d in dirs)
        assert list((agent.cfg.spool_dir / "tmp").iterdir()) == []
        assert run_agent.stop(agent) == []
    finally:
        if real:
            unmount(disk)
