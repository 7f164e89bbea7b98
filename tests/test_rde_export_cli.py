"""``labedge rde-export`` end to end: packages from real samples (translated by the agent's own
translation path) become RDEFormat zips RDE keeps whole, with the invoice checked against the
official schema beside the zip, for one package or a dataset of several."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from testpaths import require_shared
from translators.pipeline import translate_into

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / ".." / "shared"


def _package(tmp: Path, sample: Path, invoice: dict, pkg_id: str, name: str | None = None) -> Path:
    """A stored package's layout (bag/data/...) from a real sample, as the agent writes it."""
    data = tmp / pkg_id / "data"
    raw = data / "raw" / (name or sample.name)
    raw.parent.mkdir(parents=True)
    shutil.copy2(sample, raw)
    out = translate_into([raw], data, timeout_s=60)
    assert out.status in ("ok", "partial"), out.report
    (data / "invoice").mkdir()
    (data / "invoice" / "invoice.json").write_text(json.dumps(invoice, ensure_ascii=False), encoding="utf-8")
    (data / "labedge" / "provenance.json").write_text(json.dumps({"package_id": pkg_id}), encoding="utf-8")
    return data.parent


def _invoice(**custom) -> dict:
    return {"datasetId": "", "basic": {"dataName": "試料 α"}, "custom": custom,
            "sample": {"names": ["MgFe2O4 試料"], "sampleId": ""}}


def _export(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent", "rde-export", *args], capture_output=True, text=True,
                          timeout=120, cwd=REPO)


def test_a_dataset_exports_to_rdeformat_zips_with_checked_invoices(tmp_path: Path) -> None:
    templates = require_shared(SHARED / "rde-official" / "templates")
    vms = require_shared(SHARED / "samples" / "vamas")
    pkgs = [_package(tmp_path, vms / "regular.vms", _invoice(), "pkg-0", name="測定_regular.vms"),
            _package(tmp_path, vms / "irregular.vms", _invoice(), "pkg-1")]
    out = tmp_path / "export"
    res = _export(*map(str, pkgs), "--template", "nims-xps-vamas", "--templates", str(templates), "--out", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    with zipfile.ZipFile(out / "pkg-0.zip") as z:
        info = z.getinfo("nonshared_raw/測定_regular.vms")
        assert info.flag_bits & 0x800  # the UTF-8 name flag: RDE sees 測定, not mojibake
    for pkg in pkgs:
        with zipfile.ZipFile(out / f"{pkg.name}.zip") as z:
            names = z.namelist()
            tops = {n.split("/", 1)[0] for n in names}
            assert tops <= {"raw", "nonshared_raw", "main_image", "other_image", "meta", "structured", "logs"}, tops
            assert any(n.startswith("nonshared_raw/") and n.endswith(".vms") for n in names)  # as the official template
            for kept in ("provenance.json", "translation_report.json", "original_metadata.json"):
                assert f"structured/labedge_{kept}" in names
            meta = json.loads(z.read("meta/metadata.json"))
            official = json.loads((templates / "RDE_XPS/template/scienta_omicron/tasksupport/metadata-def.json").read_text())
            keys = set(meta["constant"]) | {k for row in meta["variable"] for k in row}
            assert meta["variable"] and "measurement_technique" in keys and keys <= set(official)  # the official keys
        invoice = json.loads((out / f"{pkg.name}.invoice.json").read_text(encoding="utf-8"))
        assert invoice["sample"]["names"] == ["MgFe2O4 試料"]


def test_a_missing_required_invoice_field_is_named(tmp_path: Path) -> None:
    templates = require_shared(SHARED / "rde-official" / "templates")
    sample = require_shared(SHARED / "samples" / "gatan_dm" / "test-EELS_spectrum.dm3")
    bad = _invoice()
    del bad["sample"]["names"]  # TemDm3 requires sample.names
    pkg = _package(tmp_path, sample, bad, "pkg-eels")
    out = tmp_path / "export"
    res = _export(str(pkg), "--template", "nims-temdm3", "--templates", str(templates), "--out", str(out))
    assert res.returncode == 1 and "invoice: sample/names: missing; the official template requires it" in res.stdout, res.stdout
    assert "Traceback" not in res.stdout + res.stderr
    assert (out / "pkg-eels.zip").is_file() and (out / "pkg-eels.invoice.json").is_file()
    report = json.loads((out / "pkg-eels.export.json").read_text(encoding="utf-8"))
    assert report["invoice_problems"] == ["sample/names: missing; the official template requires it"]
    assert report["metadata_def"] == "metadata-def_EELS.json"  # the method read from the file


def test_aes_requires_the_measurement_method_and_says_so(tmp_path: Path) -> None:
    templates = require_shared(SHARED / "rde-official" / "templates")
    folder = require_shared(SHARED / "samples" / "xps_aes_other" / "data036.A")
    data = tmp_path / "pkg-aes" / "data"
    (data / "raw").mkdir(parents=True)
    raws = [data / "raw" / f.name for f in sorted(folder.iterdir())]
    for f, r in zip(sorted(folder.iterdir()), raws):
        shutil.copy2(f, r)
    assert translate_into(raws, data, timeout_s=60).status in ("ok", "partial")
    (data / "invoice").mkdir()
    (data / "invoice" / "invoice.json").write_text(json.dumps(_invoice()), encoding="utf-8")
    out = tmp_path / "export"
    res = _export(str(data.parent), "--template", "nims-aes-survey", "--templates", str(templates), "--out", str(out))
    assert res.returncode == 1 and "invoice: custom/measurement_method: missing; the official template requires it (Measurement method / 測定方法)" in res.stdout, res.stdout
    with zipfile.ZipFile(out / "pkg-aes.zip") as z:
        meta = json.loads(z.read("meta/metadata.json"))
        assert {"para", "id", "data"} <= {n.rsplit("/", 1)[-1] for n in z.namelist() if n.startswith("nonshared_raw/")}
    assert meta["constant"]["analyzer_mode"] == {"value": "CRR"}  # JEOL mode 5
    assert [r["species_label_transitions"]["value"] for r in meta["variable"]] == ["CuLMM", "AlKLL"]


def test_without_the_official_templates_the_error_says_what_to_set(tmp_path: Path) -> None:
    res = _export(str(tmp_path), "--template", "nims-em", "--templates", str(tmp_path / "nope"), "--out", str(tmp_path))
    assert res.returncode == 2 and "official template" in res.stderr and "Traceback" not in res.stderr
    sample = require_shared(SHARED / "samples" / "gatan_dm" / "test_diffraction_pattern.dm3")
    pkg = _package(tmp_path, sample, _invoice(), "pkg-ted")
    res = _export(str(pkg), "--template", "nims-em", "--out", str(tmp_path / "o"))  # no --templates
    assert res.returncode == 1 and "needs --templates DIR" in res.stdout and "Traceback" not in res.stderr
    res = _export(str(pkg), "--template", "nims-nope", "--out", str(tmp_path / "o"))
    assert res.returncode == 1 and "neither a profile" in res.stdout


def test_a_planted_symlink_in_a_stored_package_is_refused(tmp_path: Path) -> None:
    sample = require_shared(SHARED / "samples" / "vamas" / "regular.vms")
    pkg = _package(tmp_path, sample, _invoice(), "pkg-link")
    secret = tmp_path / "secret.txt"
    secret.write_text("facility key material", encoding="utf-8")
    (pkg / "data" / "structured" / "notes.txt").symlink_to(secret)
    out = tmp_path / "export"
    res = _export(str(pkg), "--template", "nims-xps-vamas", "--templates",
                  str(require_shared(SHARED / "rde-official" / "templates")), "--out", str(out))
    assert res.returncode == 1 and "symbolic link" in res.stdout and "notes.txt" in res.stdout, res.stdout
    assert not (out / "pkg-link.zip").exists()
