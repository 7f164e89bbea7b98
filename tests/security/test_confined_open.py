"""Finding 5: a sub-folder swapped for a symlink while its measurement waits (with a decoy of the
same size and mtime) must not make the agent ship a file from outside the watched folder; a hard
link to a file of another owner is refused as well."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from agent.config import load_config
from agent.package.confined import OutsideWatchedFolder, open_confined
from agent.runner import Agent
from transport_helpers import wait_for

SECRET = b"agent-only secret key material 0123456789\n"


def _config(root: Path, watch: Path, hold: float) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    cfg = root / "agent.toml"
    cfg.write_text(f'device_id = "pc-1"\nspool_dir = "{root / "spool"}"\nstate_dir = "{root / "state"}"\n'
                   f'log_dir = "{root / "logs"}"\n[web]\nenabled = false\n[[instruments]]\nid = "inst"\n'
                   f'watch = ["{watch}"]\nsettle_seconds = 0.3\nunpaired_policy = "send"\n'
                   f'hold_seconds = {hold}\ngroup = "folder"\ngroup_quiet_seconds = 0.5\n')
    return cfg


def _problem_text(agent: Agent, needle: str) -> bool:
    _, snap = agent.health.snapshot()
    return any(needle in p["message"] for p in snap.get("problems", {}).values())


def _shipped_bytes(spool: Path) -> list[bytes]:
    return [p.read_bytes() for p in spool.glob("packages/*/data/raw/**/*") if p.is_file()]


def test_symlinked_subfolder_swapped_in_while_waiting_is_not_followed(tmp_path, caplog):
    caplog.set_level("INFO")
    watch, secret_dir = tmp_path / "watch", tmp_path / "agent-private"
    secret_dir.mkdir(mode=0o700)
    (secret_dir / "scan.txt").write_bytes(SECRET)
    os.chmod(secret_dir / "scan.txt", 0o600)
    (watch / "run1").mkdir(parents=True)
    decoy = watch / "run1" / "scan.txt"
    decoy.write_bytes(b"x" * len(SECRET))  # same size ...
    st = decoy.stat()
    os.utime(secret_dir / "scan.txt", ns=(st.st_atime_ns, st.st_mtime_ns))  # ... and same mtime as the secret
    cfg = _config(tmp_path / "pc", watch, hold=2)
    agent = Agent(load_config(cfg))
    agent.start()
    try:
        # the measurement settles and waits for its sheet: swap the folder for a link now
        wait_for(lambda: "held until a sample sheet" in caplog.text, 20, "the measurement to settle and wait")
        shutil.move(str(watch / "run1"), str(tmp_path / "run1.moved"))
        os.symlink(secret_dir, watch / "run1")
        wait_for(lambda: _problem_text(agent, "symbolic link")
                 or _shipped_bytes(tmp_path / "pc" / "spool"), 20, "the build attempt")
        assert SECRET not in _shipped_bytes(tmp_path / "pc" / "spool"), "a file outside the watched folder was shipped"
    finally:
        assert agent.stop() == []


def test_open_confined_refuses_links_at_any_depth_and_foreign_hard_links(tmp_path):
    root = tmp_path / "watch"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "ok.txt").write_text("ok")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.txt").write_text("secret")
    os.symlink(outside, root / "a" / "link")
    os.close(open_confined(root, root / "a" / "b" / "ok.txt"))
    with pytest.raises(OutsideWatchedFolder, match="symbolic link"):
        open_confined(root, root / "a" / "link" / "f.txt")
    with pytest.raises(OutsideWatchedFolder):
        open_confined(root, outside / "f.txt")
    if os.geteuid() != 0:
        pytest.skip("a file of another owner needs root to create")  # CI runs as root: the check below runs
    foreign = outside / "foreign.txt"
    foreign.write_text("another account's file")
    os.chown(foreign, 12345, 12345)
    os.link(foreign, root / "a" / "b" / "linked.txt")
    with pytest.raises(OutsideWatchedFolder, match="hard link"):
        open_confined(root, root / "a" / "b" / "linked.txt")


def test_sample_sheet_beside_the_data_is_not_read_through_a_symlink(tmp_path):
    """A `*.sheet.json` beside the data that is a link to a JSON file elsewhere (another user's
    sheet, say) must not pair the measurement: its values would ship in the invoice."""
    import json
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sheets"))
    from sheets_helpers import FIB_VALUES, AgentEnv, write_config

    elsewhere = tmp_path / "private"
    elsewhere.mkdir(mode=0o700)
    (elsewhere / "theirs.sheet.json").write_text(json.dumps(
        {"format": "labedge-sheet", "version": 1, "template": "fib-atom-probe",
         "sheet_id": "5f0e9a52-1111-4222-8333-444455556666", "values": {**FIB_VALUES, "sample.names": "SECRET"}}))
    env = AgentEnv(tmp_path, tmp_path / "watch", write_config(tmp_path))
    env.start()
    try:
        run = env.watch / "runA"
        run.mkdir(parents=True)
        os.symlink(elsewhere / "theirs.sheet.json", run / "W.sheet.json")
        env.drop("a1.tif", folder=run)
        wait_for(lambda: len(env.holds()) == 1 or env.packages(), 30, "the measurement to be held or packaged")
        assert env.packages() == [], "the measurement was paired through a symlinked sheet"
        assert len(env.holds()) == 1
    finally:
        env.stop()
