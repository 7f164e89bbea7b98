"""Every real vendor file goes through the watcher into a bag-valid package, raw/ byte-identical."""
from __future__ import annotations

import shutil
from pathlib import Path

from core_helpers import run_agent  # noqa: F401 - fixture
from core_helpers import db_files, instrument, package_dirs, provenance, sha256_of, wait_for, write_config

from agent.package.verify import verify_package


def test_every_vendor_sample_becomes_a_verified_package(tmp_path, samples_dir, run_agent):
    sources = sorted(p for p in samples_dir.rglob("*") if p.is_file() and p.name != "SOURCES.md")
    assert len(sources) >= 30, f"expected the shared sample set, found {len(sources)} files"
    watch = tmp_path / "watch"
    cfg = write_config(tmp_path, [instrument(watch, iid="facility", settle_seconds=0.5)])
    watch.mkdir()
    agent = run_agent(cfg)
    wait_for(lambda: agent.watchers["facility"].scans_done, 30, "the start-up scan")
    # Dropped in while the agent watches, as an instrument would (copies; never into the repo).
    expected = {}
    for src in sources:
        dest = watch / src.relative_to(samples_dir)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        expected[str(dest)] = sha256_of(src)
    wait_for(lambda: len(db_files(agent.cfg.state_db)) >= len(sources), 240,
             f"{len(sources)} sample files packaged", interval=0.5)
    files = db_files(agent.cfg.state_db)
    assert {f["path"]: f["sha256"] for f in files} == expected
    assert len(files) == len(expected), "a sample was packaged twice"
    dirs = package_dirs(agent.cfg.spool_dir)
    assert len(dirs) == len(sources)
    bad = {}
    for d in dirs:
        res = verify_package(d)
        if not res.ok:
            bad[d.name] = res.problems
        (src,) = provenance(d)["sources"]
        original = samples_dir / Path(src["path"]).relative_to(watch)
        assert (d / "data" / src["raw"]).read_bytes() == original.read_bytes(), src["path"]
    assert not bad, bad
