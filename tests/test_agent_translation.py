"""Translation inside the running agent: a damaged instrument file never costs its raw bytes."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path

from agent.config import load_config
from agent.package.verify import verify_package
from agent.runner import Agent


def _config(tmp: Path, watch: Path) -> Path:
    p = tmp / "labedge.toml"
    p.write_text(f'''
device_id = "xrd-pc"
spool_dir = "{tmp / 'spool'}"
state_dir = "{tmp / 'state'}"
log_dir = "{tmp / 'log'}"
translate_timeout_seconds = 60
[web]
enabled = false
[[instruments]]
id = "xrd"
watch = ["{watch}"]
settle_seconds = 0.3
unpaired_policy = "send"
hold_seconds = 0
truncated_grace_seconds = 1  # the cut file waits this long for its writer, then ships as it is
''', encoding="utf-8")
    return p


def _wait_packages(agent: Agent, n: int, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = agent.store.list_packages()
        if len(rows) >= n:
            return rows
        time.sleep(0.1)
    raise AssertionError(f"expected {n} packages, have {len(agent.store.list_packages())}")


def test_truncated_and_good_files_both_ship(tmp_path, samples_dir, rde_validate):
    watch = tmp_path / "watch"
    watch.mkdir()
    agent = Agent(load_config(_config(tmp_path, watch)))
    agent.start()
    try:
        good = samples_dir / "rigaku_xrd" / "XRD_RIGAKU.ras"
        raw = (samples_dir / "xrd_panalytical" / "empyrean.xrdml").read_bytes()
        broken = raw[: len(raw) // 3]  # cut mid-element: the instrument PC crashed while saving
        (watch / "cut.xrdml").write_bytes(broken)
        shutil.copy(good, watch / "good.ras")
        rows = _wait_packages(agent, 2)
    finally:
        assert agent.stop() == []

    by_name = {}
    for row in rows:
        pkg = Path(row.path)
        assert verify_package(pkg).ok
        prov = json.loads((pkg / "data/labedge/provenance.json").read_text())
        by_name[Path(prov["sources"][0]["path"]).name] = pkg

    cut = by_name["cut.xrdml"]
    assert (cut / "data/raw/cut.xrdml").read_bytes() == broken
    report = json.loads((cut / "data/labedge/translation_report.json").read_text())
    assert report["status"] != "ok"
    assert "cut.xrdml" in json.dumps(report)  # the error names the file
    assert not (cut / "data/meta/metadata.json").exists()

    ok = by_name["good.ras"]
    assert hashlib.sha256((ok / "data/raw/good.ras").read_bytes()).hexdigest() == \
        hashlib.sha256(good.read_bytes()).hexdigest()
    meta = json.loads((ok / "data/meta/metadata.json").read_text())
    tube = meta["variable"][0]["tube_voltage"]
    assert tube == {"value": 40.0, "unit": "kV"}
    assert next((ok / "data/structured").glob("*.csv")).read_text().splitlines()[0].startswith("2theta (deg)")
    for pkg in (cut, ok):
        res = subprocess.run([str(rde_validate), str(pkg)], capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr
