"""Every real vendor file, of ../shared/samples and ../shared/samples-variants, goes through the
watcher into a verified package with raw/ byte-identical. One agent watches both sets, each in its
own folder, as an instrument PC with many instruments would.

The variants must also be translated, not just packaged: status ok or partial, except the HDF4
NeXus file, whose report must say plainly that HDF4 is not supported."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from core_helpers import run_agent  # noqa: F401 - fixture
from core_helpers import db_files, instrument, package_dirs, provenance, sha256_of, wait_for, write_config
from testpaths import SHARED, require_shared

from agent.package.verify import verify_package

#: set name -> the least number of files it must hold (a smaller set means ../shared is not the shared set)
SETS = {"samples": 30, "samples-variants": 29}


def test_every_vendor_sample_and_variant_becomes_a_verified_package(tmp_path, run_agent):
    roots = {name: require_shared(SHARED / name) for name in SETS}
    sources = {name: sorted(p for p in root.rglob("*") if p.is_file() and p.name != "SOURCES.md")
               for name, root in roots.items()}
    for name, least in SETS.items():
        assert len(sources[name]) >= least, f"expected the shared {name} set, found {len(sources[name])} files"
    watches = {name: tmp_path / "watch" / name for name in SETS}
    cfg = write_config(tmp_path, [instrument(w, iid=name.split("-")[-1], settle_seconds=0.5)
                                  for name, w in watches.items()])
    for w in watches.values():
        w.mkdir(parents=True)
    agent = run_agent(cfg)
    wait_for(lambda: all(w.scans_done for w in agent.watchers.values()), 30, "the start-up scans")
    # Dropped in while the agent watches, as an instrument would (copies; never into the repo).
    expected, origin = {}, {}
    for name, files in sources.items():
        for src in files:
            dest = watches[name] / src.relative_to(roots[name])
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            expected[str(dest)] = sha256_of(src)
            origin[str(dest)] = (name, src)
    total = len(expected)
    wait_for(lambda: len(db_files(agent.cfg.state_db)) >= total, 300, f"{total} sample files packaged",
             interval=0.5)
    files = db_files(agent.cfg.state_db)
    assert {f["path"]: f["sha256"] for f in files} == expected
    assert len(files) == total, "a sample was packaged twice"
    dirs = package_dirs(agent.cfg.spool_dir)
    assert len(dirs) == total
    bad, untranslated = {}, {}
    for d in dirs:
        res = verify_package(d)
        if not res.ok:
            bad[d.name] = res.problems
        (src,) = provenance(d)["sources"]
        name, original = origin[src["path"]]
        assert (d / "data" / src["raw"]).read_bytes() == original.read_bytes(), src["path"]
        if name != "samples-variants":
            continue
        rep = json.loads((d / "data" / "labedge" / "translation_report.json").read_text(encoding="utf-8"))
        if original.name == "lrcs3701.nxs":
            assert rep["status"] == "failed" and "HDF4 is not supported" in rep["error"], rep
            assert "Traceback" not in rep["error"]
        elif rep["status"] not in ("ok", "partial"):
            untranslated[original.name] = (rep["status"], rep.get("error"))
    assert not bad, bad
    assert not untranslated, untranslated
