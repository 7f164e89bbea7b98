"""``labedge rde-export``: a real package (built by the agent's package builder) becomes the
RDEFormat zip an official template's dataset imports, with the invoice beside it, checked."""
from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import pytest

from _helpers import SAMPLES
from agent.cli import main as labedge
from agent.measurement import Measurement, SourceFile
from agent.package.builder import BuildContext, Spool, build_package
from agent.pairing import MINIMAL_SCHEMA, UNPAIRED, Pairing, minimal_invoice

OFFICIAL = SAMPLES.parent / "rde-official"
RAS_DEF = OFFICIAL / "templates/RDE_XRD/template/rigaku/tasksupport/metadata-def_rigaku_ras.json"


def _package(tmp_path: Path, sample: Path) -> Path:
    spool = Spool(tmp_path / "spool")
    spool.ensure()
    src = tmp_path / "watch" / sample.name
    src.parent.mkdir()
    src.write_bytes(sample.read_bytes())
    st = src.stat()
    m = Measurement("xrd-1", str(src), [SourceFile(src, src.name, st.st_size, st.st_mtime_ns)], time.time(), src.parent)
    return build_package(spool, m, Pairing(UNPAIRED, minimal_invoice(m), MINIMAL_SCHEMA), BuildContext("pc"),
                         translator="auto").path


def test_rde_export_writes_the_rdeformat_zip_and_checks_the_invoice(tmp_path: Path, capsys) -> None:
    if not RAS_DEF.exists():
        pytest.skip("../shared/rde-official is absent")
    pkg = _package(tmp_path, SAMPLES / "rigaku_xrd" / "XRD_RIGAKU.ras")
    out = tmp_path / "export"
    rc = labedge(["rde-export", str(pkg), "--template", str(RAS_DEF), "--out", str(out)])
    printed = capsys.readouterr().out
    zpath = out / f"{pkg.name}.zip"
    with zipfile.ZipFile(zpath) as z:
        names = set(z.namelist())
        meta = json.loads(z.read("meta/metadata.json"))
    assert "nonshared_raw/XRD_RIGAKU.ras" in names and not any(n.startswith("raw/") for n in names)
    assert {"structured/XRD_RIGAKU.csv", "structured/labedge_provenance.json",
            "structured/labedge_translation_report.json", "structured/labedge_original_metadata.json",
            "structured/labedge_metadata.json"} <= names
    assert not any(n.startswith(("labedge/", "invoice/", "tasksupport/")) for n in names)  # RDE drops these
    official = json.loads((OFFICIAL / "outputs/RDE_XRD/rigaku_xrd__XRD_RIGAKU.ras.metadata.json").read_text())
    assert meta == official
    # the agent's minimal invoice lacks what the official schema requires: said, not hidden
    report = json.loads((out / f"{pkg.name}.export.json").read_text())
    assert report["invoice_problems"] and rc == 1 and "invoice:" in printed
    assert json.loads((out / f"{pkg.name}.invoice.json").read_text()) == \
        json.loads((pkg / "data" / "invoice" / "invoice.json").read_text())


def test_rde_export_names_what_is_not_a_package(tmp_path: Path, capsys) -> None:
    rc = labedge(["rde-export", str(tmp_path), "--template", str(RAS_DEF), "--out", str(tmp_path / "o")])
    assert rc == 1 and "not a labedge package" in capsys.readouterr().out
