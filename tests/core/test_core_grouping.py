"""Multi-file measurements arrive as one package: sidecar pairs and folder datasets."""
from __future__ import annotations

import time

from core_helpers import run_agent  # noqa: F401 - fixture
from core_helpers import db_packages, instrument, package_dirs, provenance, wait_for, write_config, write_slowly

from agent.package.verify import verify_package


def _raw_names(pkg):
    raw = pkg / "data" / "raw"
    return sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*") if p.is_file())


def test_stem_groups_an_image_with_its_sidecar(tmp_path, run_agent):
    watch = tmp_path / "watch"
    watch.mkdir()
    cfg = write_config(tmp_path, [instrument(watch, iid="jsm-7800f", group="stem", group_quiet_seconds=0.8)])
    agent = run_agent(cfg)
    wait_for(lambda: agent.watchers["jsm-7800f"].scans_done, 30, "the start-up scan")
    # JEOL writes the image first and the .txt sidecar a little later.
    (watch / "sampleA_001.tif").write_bytes(b"II*\x00" + b"\x00" * 5000)
    time.sleep(0.4)  # the gap an instrument leaves between the two files (shorter than the quiet period)
    (watch / "sampleA_001.txt").write_text("$CM_FORMAT JEOL/SEM\n$CM_MAG 5000\n")
    (watch / "other_002.tif").write_bytes(b"II*\x00" + b"\x01" * 100)
    wait_for(lambda: len(db_packages(agent.cfg.state_db)) >= 2, 30, "two packages")
    wait_for(lambda: agent.pipeline.pending() == 0, 30, "the pipeline to drain")
    pkgs = {tuple(_raw_names(p)): p for p in package_dirs(agent.cfg.spool_dir)}
    assert set(pkgs) == {("sampleA_001.tif", "sampleA_001.txt"), ("other_002.tif",)}
    pkg = pkgs[("sampleA_001.tif", "sampleA_001.txt")]
    assert verify_package(pkg).ok
    assert len(db_packages(agent.cfg.state_db)) == 2


def test_folder_is_one_measurement_after_a_quiet_period(tmp_path, run_agent):
    watch = tmp_path / "watch"
    watch.mkdir()
    cfg = write_config(tmp_path, [instrument(watch, iid="xafs", group="folder", group_quiet_seconds=1.5)])
    agent = run_agent(cfg)
    wait_for(lambda: agent.watchers["xafs"].scans_done, 30, "the start-up scan")
    run = watch / "run_0042"
    (run / "scans").mkdir(parents=True)
    # Files trickle in with gaps shorter than the quiet period: still one measurement.
    (run / "header.dat").write_text("# beamline BL-9A\n")
    time.sleep(0.5)
    write_slowly(run / "scans" / "scan_001.dat", [b"1 2 3\n"] * 3, pause=0.2)
    time.sleep(0.5)
    (run / "scans" / "scan_002.dat").write_text("4 5 6\n")
    wait_for(lambda: db_packages(agent.cfg.state_db), 30, "the folder's package")
    wait_for(lambda: agent.pipeline.pending() == 0 and not agent.watchers["xafs"].tracker.pending, 30, "quiet")
    pkgs = package_dirs(agent.cfg.spool_dir)
    assert len(pkgs) == 1, pkgs
    assert _raw_names(pkgs[0]) == ["header.dat", "scans/scan_001.dat", "scans/scan_002.dat"]
    assert provenance(pkgs[0])["measurement"]["key"] == str(run)
    assert verify_package(pkgs[0]).ok


def test_folder_with_marker_is_released_when_the_marker_appears(tmp_path, run_agent):
    watch = tmp_path / "watch"
    watch.mkdir()
    # The quiet period is far longer than the test: only the marker can complete the folder.
    cfg = write_config(tmp_path, [instrument(watch, iid="tem", group="folder", group_quiet_seconds=3600,
                                             marker="*.done")])
    agent = run_agent(cfg)
    w = agent.watchers["tem"]
    wait_for(lambda: w.scans_done, 30, "the start-up scan")
    ds = watch / "session_7"
    (ds / "tilt" / "deep").mkdir(parents=True)
    names = ["overview.dm4", "tilt/tilt_-60.dm4", "tilt/tilt_+60.dm4", "tilt/deep/log.txt"]
    for n in names:
        (ds / n).write_bytes(n.encode() * 100)
    # All of them settle into the open group, which must then stay open (no marker yet).
    wait_for(lambda: not w.tracker.pending and sum(len(g.files) for gr in w.groupers.values()
                                                   for g in gr.open.values()) == 4, 30, "files settled into the group")
    time.sleep(1.0)  # several watcher ticks with everything settled: a premature release would show now
    assert db_packages(agent.cfg.state_db) == [] and agent.pipeline.pending() == 0
    (ds / "acquisition.done").write_text("")
    wait_for(lambda: db_packages(agent.cfg.state_db), 30, "the package released by the marker")
    pkgs = package_dirs(agent.cfg.spool_dir)
    assert len(pkgs) == 1
    got = _raw_names(pkgs[0])
    assert set(names) <= set(got), got
    assert set(got) - set(names) <= {"acquisition.done"}
    assert verify_package(pkgs[0]).ok
