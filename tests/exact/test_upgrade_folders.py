"""An upgrade must not strand the queue. Agents before 0.2 kept one shared set of default folders;
0.2 gives each config its own. A config that ran with the old defaults must keep its queued
packages: the first config to start after the upgrade adopts the old folders, and only that one."""
from __future__ import annotations

import os
from pathlib import Path

from core_helpers import instrument, wait_for, write_config
from exact_helpers import Run, status


def test_a_config_that_used_the_old_shared_folders_keeps_its_queue(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    for k in [k for k in os.environ if k.startswith("XDG_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("HOME", str(home))  # platformdirs (and every child) finds the folders under it
    legacy_state = home / ".local" / "state" / "labedge"
    legacy_spool = home / ".local" / "share" / "labedge" / "spool"
    watch = tmp_path / "watch"
    watch.mkdir()
    cfg = tmp_path / "labedge.toml"

    # What 0.1 did: the default folders, shared by every config (written out here, as 0.1 resolved them).
    write_config(tmp_path, [instrument(watch)], state_dir=legacy_state, spool_dir=legacy_spool,
                 log_dir=home / ".local" / "state" / "labedge" / "log")
    old = Run(cfg).wait_running()
    (watch / "scan.csv").write_text("2theta,counts\n10,5\n")
    wait_for(lambda: status(cfg)[1]["packages"]["queued"] == 1, 60, "a queued package (offline)")
    old.stop()

    # After the upgrade the same config names no folders: it must find the queue where it was.
    text = "\n".join(l for l in cfg.read_text().splitlines() if not l.startswith(("state_dir", "spool_dir")))
    cfg.write_text(text + "\n")
    _, st = status(cfg)
    assert st["packages"]["queued"] == 1, st

    # Another config on the same PC gets folders of its own, never the adopted ones.
    other_root = tmp_path / "other"
    other_root.mkdir()
    other = write_config(other_root, [instrument(tmp_path / "watch2")], device_id="test-pc-02")
    (tmp_path / "watch2").mkdir()
    other.write_text("\n".join(l for l in other.read_text().splitlines()
                               if not l.startswith(("state_dir", "spool_dir"))) + "\n")
    _, st2 = status(other)
    assert st2["packages"]["queued"] == 0, st2
    assert (legacy_state / "claimed-by-config.txt").read_text().strip() == str(cfg.resolve())
