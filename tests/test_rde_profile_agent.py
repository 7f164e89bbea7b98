"""``rde_template`` on an instrument: the running agent ships the package in the official NIMS
template's vocabulary, and the facility's ``labedge rde-export`` turns that very package into the
RDEFormat zip. Config errors name the key."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from agent.config import ConfigError, config_schema, load_config
from agent.package.verify import verify_package
from agent.runner import Agent
from testpaths import require_shared
from translators import profiles

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / ".." / "shared" / "rde-official" / "templates"


def _config(tmp: Path, watch: Path, extra_inst: str = "", extra_top: str = "") -> Path:
    p = tmp / "labedge.toml"
    p.write_text(f'''
device_id = "xps-pc"
spool_dir = "{tmp / 'spool'}"
state_dir = "{tmp / 'state'}"
log_dir = "{tmp / 'log'}"
translate_timeout_seconds = 60
{extra_top}
[web]
enabled = false
[[instruments]]
id = "xps"
watch = ["{watch}"]
settle_seconds = 0.3
unpaired_policy = "send"
hold_seconds = 0
{extra_inst}
''', encoding="utf-8")
    return p


def _wait_package(agent: Agent, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = agent.store.list_packages()
        if rows:
            return rows[0]
        time.sleep(0.1)
    raise AssertionError("no package within the deadline")


def test_agent_ships_the_official_vocabulary_and_rde_export_zips_it(tmp_path: Path, samples_dir: Path,
                                                                      rde_validate: Path) -> None:
    templates = require_shared(TEMPLATES)
    watch = tmp_path / "watch"
    watch.mkdir()
    cfg = _config(tmp_path, watch, 'rde_template = "nims-xps-vamas"', f'rde_templates_dir = "{templates}"')
    agent = Agent(load_config(cfg))
    agent.start()
    try:
        shutil.copy(samples_dir / "vamas" / "regular.vms", watch / "regular.vms")
        row = _wait_package(agent)
    finally:
        assert agent.stop() == []
    pkg = Path(row.path)
    assert verify_package(pkg).ok
    official = json.loads((templates / "RDE_XPS/template/scienta_omicron/tasksupport/metadata-def.json").read_text())
    meta = json.loads((pkg / "data/meta/metadata.json").read_text())
    assert meta["variable"][0]["pass_energy"] == {"value": "100", "unit": "eV"}  # regular.vms block 1
    assert meta["constant"]["scan_mode"] == {"value": "REGULAR"}
    assert json.loads((pkg / "data/tasksupport/metadata-def.json").read_text()) == official
    assert json.loads((pkg / "data/labedge/labedge_metadata.json").read_text())["constant"]  # richer terms kept
    report = json.loads((pkg / "data/labedge/translation_report.json").read_text())
    assert report["rde_template"]["profile"] == "nims-xps-vamas"
    subprocess.run([str(rde_validate), str(pkg)], check=True, capture_output=True, timeout=600)

    out = tmp_path / "export"
    res = subprocess.run([sys.executable, "-m", "agent", "rde-export", str(pkg), "--template", "nims-xps-vamas",
                          "--templates", str(templates), "--out", str(out)], capture_output=True, text=True,
                         timeout=120, cwd=REPO)
    # sent unpaired (no sample sheet): the invoice has no sample, which every official schema requires
    assert res.returncode == 1 and "invoice: sample: missing; the official template requires it" in res.stdout, res.stdout
    assert json.loads((out / f"{pkg.name}.invoice.json").read_text()) == \
        json.loads((pkg / "data/invoice/invoice.json").read_text())
    with zipfile.ZipFile(out / f"{pkg.name}.zip") as z:
        assert json.loads(z.read("meta/metadata.json")) == meta  # the profile's metadata, unchanged
        assert "nonshared_raw/regular.vms" in z.namelist()
        assert json.loads(z.read("structured/labedge_provenance.json"))["package_id"] == pkg.name


def test_rde_template_needs_the_templates_folder(tmp_path: Path) -> None:
    cfg = _config(tmp_path, tmp_path, 'rde_template = "nims-em"')
    with pytest.raises(ConfigError, match="rde_template.*rde_templates_dir"):
        load_config(cfg, check_watch_folders=False)


def test_a_templates_folder_without_the_template_is_refused_at_start(tmp_path: Path) -> None:
    cfg = _config(tmp_path, tmp_path, 'rde_template = "nims-xps-vamas"', f'rde_templates_dir = "{tmp_path}"')
    with pytest.raises(ConfigError, match="rde_templates_dir has no .*RDE_XPS.*scienta_omicron"):
        load_config(cfg)


def test_an_unknown_rde_template_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    cfg = _config(tmp_path, tmp_path, 'rde_template = "nims-xrd-bruker"', f'rde_templates_dir = "{tmp_path}"')
    with pytest.raises(ConfigError, match="rde_template"):
        load_config(cfg, check_watch_folders=False)


def test_the_config_schema_lists_exactly_the_profiles() -> None:
    inst = config_schema()["properties"]["instruments"]["items"]["properties"]
    assert sorted(inst["rde_template"]["enum"]) == profiles.names()


def test_a_missing_official_template_keeps_labedge_vocabulary_with_a_warning(tmp_path: Path, samples_dir: Path) -> None:
    from translators.pipeline import translate_into

    data = tmp_path / "data"
    (data / "raw").mkdir(parents=True)
    raw = data / "raw" / "regular.vms"
    shutil.copy(samples_dir / "vamas" / "regular.vms", raw)
    out = translate_into([raw], data, timeout_s=60, rde_profile=("nims-xps-vamas", tmp_path / "no-templates"))
    assert out.status == "partial" and any("no-templates" in w for w in out.warnings), out.warnings
    terms = json.loads((data / "tasksupport/metadata-def.json").read_text())
    assert "institution" in terms and "institution_identifier" not in terms and json.loads((data / "meta/metadata.json").read_text())["constant"]
    assert not (data / "labedge" / "labedge_metadata.json").exists()


def test_labedge_translate_takes_a_profile_name(tmp_path: Path, samples_dir: Path) -> None:
    templates = require_shared(TEMPLATES)
    cmd = [sys.executable, "-m", "agent", "translate", str(samples_dir / "gatan_dm" / "test-EELS_spectrum.dm3"),
           "--out", str(tmp_path / "o"), "--rde-template", "nims-temdm3"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO, env={"PATH": "/usr/bin:/bin"})
    assert res.returncode == 2 and "--rde-templates DIR" in res.stderr
    res = subprocess.run([*cmd, "--rde-templates", str(templates)], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert res.returncode == 0 and "RDE template nims-temdm3" in res.stdout, res.stdout + res.stderr
    meta = json.loads((tmp_path / "o" / "test-EELS_spectrum.dm3" / "data" / "meta" / "metadata.json").read_text())
    assert meta["constant"]["eels.acceleration_voltage"] == {"value": 200000.0, "unit": "V"}  # "Voltage" tag, in V
