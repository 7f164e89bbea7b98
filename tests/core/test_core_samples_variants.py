"""Every file of ../shared/samples-variants goes through the watcher into a verified package, and
is translated (not just packaged): status ok or partial, except the HDF4 NeXus file, whose report
must say plainly that HDF4 is not supported."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from core_helpers import run_agent  # noqa: F401 - fixture
from core_helpers import db_files, instrument, package_dirs, provenance, sha256_of, wait_for, write_config
from testpaths import SHARED, require_shared

from agent.package.verify import verify_package

VARIANTS = SHARED / "samples-variants"


def test_every_variant_sample_becomes_a_verified_translated_package(tmp_path, run_agent):
    root = require_shared(VARIANTS)
    sources = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "SOURCES.md")
    assert len(sources) >= 29, f"expected the shared variant set, found {len(sources)} files"
    watch = tmp_path / "watch"
    cfg = write_config(tmp_path, [instrument(watch, iid="facility", settle_seconds=0.5)])
    watch.mkdir()
    agent = run_agent(cfg)
    wait_for(lambda: agent.watchers["facility"].scans_done, 30, "the start-up scan")
    expected = {}
    for src in sources:
        dest = watch / src.relative_to(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        expected[str(dest)] = sha256_of(src)
    wait_for(lambda: len(db_files(agent.cfg.state_db)) >= len(sources), 240,
             f"{len(sources)} variant files packaged", interval=0.5)
    files = db_files(agent.cfg.state_db)
    assert {f["path"]: f["sha256"] for f in files} == expected
    dirs = package_dirs(agent.cfg.spool_dir)
    assert len(dirs) == len(sources)
    bad, untranslated = {}, {}
    for d in dirs:
        res = verify_package(d)
        if not res.ok:
            bad[d.name] = res.problems
        (src,) = provenance(d)["sources"]
        original = root / Path(src["path"]).relative_to(watch)
        assert (d / "data" / src["raw"]).read_bytes() == original.read_bytes(), src["path"]
        rep = json.loads((d / "data" / "labedge" / "translation_report.json").read_text(encoding="utf-8"))
        if original.name == "lrcs3701.nxs":
            assert rep["status"] == "failed" and "HDF4 is not supported" in rep["error"], rep
            assert "Traceback" not in rep["error"]
        elif rep["status"] not in ("ok", "partial"):
            untranslated[original.name] = (rep["status"], rep.get("error"))
    assert not bad, bad
    assert not untranslated, untranslated
