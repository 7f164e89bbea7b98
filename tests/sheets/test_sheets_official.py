"""An instrument whose config selects an official NIMS template (``rde_template``) gets that
template's invoice ``custom`` fields on its sample sheet; the invoice then passes the official
``invoice.schema.json``, and ``rde-export`` names the field a user left out."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from sheets_helpers import OWNER, AgentEnv, require_shared, wait_for, write_config

from agent.sheets import official
from agent.sheets.form import SheetInvalid, fields_of, form_model, validate_values
from agent.sheets.invoice import build_invoice
from agent.sheets.templates import TemplateError, load_template
from facility.rde_export import check_invoice, export_one
from testpaths import SHARED
from translators.pipeline import translate_into

TEMPLATES = SHARED / "rde-official" / "templates"
AES_SCHEMA = TEMPLATES / "RDE_AES/templates/AES-survey/tasksupport/invoice.schema.json"
VALUES = {"basic.dateSubmitted": "2026-11-20", "sample.names": "Cu-Al 合金", "custom.measurement_method": "AES survey"}


@pytest.fixture()
def official_root():
    require_shared(TEMPLATES)
    official.use_root(TEMPLATES)
    yield TEMPLATES
    official.use_root(None)


def test_the_sheet_offers_the_official_custom_fields(official_root: Path) -> None:
    fields = fields_of(form_model("nims-aes-survey", load_template("nims-aes-survey")))
    method = fields["custom.measurement_method"]
    assert method["required"] and method["label"] == {"ja": "測定方法", "en": "Measurement method"}
    assert fields["custom.analyser_detection_solid_angle"]["unit"] == "sr"
    phi = fields_of(form_model("nims-xps-phi", load_template("nims-xps-phi")))
    assert phi["custom.no3dimage"]["required"] and phi["custom.no3dimage"]["enum"] == [0, 1]
    tem = fields_of(form_model("nims-temdm3", load_template("nims-temdm3")))
    assert tem["custom.stem_stem_imaging_mode"]["enum"] == ["BF", "ABF", "ADF", "HAADF"]
    assert tem["custom.measurement_measured_date"]["format"] == "date"
    with pytest.raises(SheetInvalid) as err:  # the form refuses the sheet, naming the field
        validate_values(form_model("nims-aes-survey", load_template("nims-aes-survey")),
                        {k: v for k, v in VALUES.items() if k != "custom.measurement_method"})
    assert set(err.value.errors) == {"custom.measurement_method"}


def test_without_the_site_templates_the_error_says_what_to_set() -> None:
    official.use_root(None)
    old = os.environ.pop("LABEDGE_RDE_TEMPLATES", None)
    try:
        with pytest.raises(TemplateError, match="rde_templates_dir"):
            load_template("nims-aes-survey")
    finally:
        if old is not None:
            os.environ["LABEDGE_RDE_TEMPLATES"] = old


def test_the_invoice_carries_the_fields_and_passes_the_official_schema(official_root: Path) -> None:
    schema = load_template("nims-temdm3")
    values = validate_values(form_model("nims-temdm3", schema), {**VALUES, "custom.stem_stem_imaging_mode": "HAADF"})
    inv = build_invoice(schema, values, data_name="a.dm3", default_owner_id=OWNER,
                        derived={"measurement_measured_date": "2025-03-04"})
    assert inv["custom"]["stem_stem_imaging_mode"] == "HAADF"
    assert inv["custom"]["measurement_measured_date"] == "2025-03-04"  # from the measurement: left empty
    path = TEMPLATES / "RDE_ELECTRON_MICROSCOPE_STANDARD/templates/template_TemDm3/tasksupport/invoice.schema.json"
    assert check_invoice(inv, path) == []
    mine = validate_values(form_model("nims-temdm3", schema), {**VALUES, "custom.measurement_measured_date": "2025-01-02"})
    inv = build_invoice(schema, mine, data_name="a.dm3", default_owner_id=OWNER,
                        derived={"measurement_measured_date": "2025-03-04"})
    assert inv["custom"]["measurement_measured_date"] == "2025-01-02"  # the user's value wins


def _aes_package(root: Path, invoice: dict) -> Path:
    folder = require_shared(SHARED / "samples" / "xps_aes_other" / "data036.A")
    data = root / "pkg-aes" / "data"
    (data / "raw").mkdir(parents=True)
    raws = []
    for f in sorted(folder.iterdir()):
        shutil.copy2(f, data / "raw" / f.name)
        raws.append(data / "raw" / f.name)
    assert translate_into(raws, data, timeout_s=60).status in ("ok", "partial")
    (data / "invoice").mkdir()
    (data / "invoice" / "invoice.json").write_text(json.dumps(invoice, ensure_ascii=False), encoding="utf-8")
    return data.parent


def test_rde_export_accepts_the_sheets_invoice_and_names_a_left_out_field(official_root: Path, tmp_path: Path) -> None:
    schema = load_template("nims-aes-survey")
    inv = build_invoice(schema, validate_values(form_model("nims-aes-survey", schema), VALUES),
                        data_name="data036.A", default_owner_id=OWNER)
    pkg = _aes_package(tmp_path, inv)
    assert export_one(pkg, "nims-aes-survey", TEMPLATES, tmp_path / "ok")["invoice_problems"] == []
    # a sheet saved before the instrument switched to the official template lacks the field
    del inv["custom"]["measurement_method"]
    (pkg / "data" / "invoice" / "invoice.json").write_text(json.dumps(inv, ensure_ascii=False), encoding="utf-8")
    problems = export_one(pkg, "nims-aes-survey", TEMPLATES, tmp_path / "bad")["invoice_problems"]
    assert problems == ["custom/measurement_method: missing; the official template requires it "
                        "(Measurement method / 測定方法)"]


def test_the_agents_sheet_page_and_invoice_follow_the_instruments_rde_template(tmp_path: Path) -> None:
    """One agent, two instruments: AES (the official template requires measurement_method) and
    XPS (its measurement date is the measurement's, prefilled on the page and filled if left empty)."""
    templates = require_shared(TEMPLATES)
    watch, xps_watch = tmp_path / "watch", tmp_path / "xps"
    xps_watch.mkdir()
    cfg = write_config(tmp_path, extra_top=f'rde_templates_dir = "{templates.as_posix()}"', instruments=f'''
[[instruments]]
id = "aes01"
rde_template = "nims-aes-survey"
watch = ["{watch.as_posix()}"]
settle_seconds = 0.3
unpaired_policy = "hold"

[[instruments]]
id = "xps01"
rde_template = "nims-xps-vamas"
watch = ["{xps_watch.as_posix()}"]
settle_seconds = 0.3
unpaired_policy = "hold"
''')
    env = AgentEnv(tmp_path, watch, cfg)
    try:
        env.start()
        st, page = env.request("GET", "/sheet/aes01")
        assert st == 200 and "measurement_method" in page and "測定方法" in page
        values = {k: v for k, v in VALUES.items() if k != "custom.measurement_method"}
        st, body = env.post("/api/sheet", {"instrument_id": "aes01", "values": values})
        assert st == 400 and set(body["errors"]) == {"custom.measurement_method"}, body
        st, body = env.post("/api/sheet", {"instrument_id": "aes01", "values": VALUES})
        assert st == 200, body
        env.drop("survey.txt", b"AES survey\n")
        pkg = env.wait_packages(1)[0]
        inv = env.invoice(pkg)
        assert inv["custom"]["measurement_method"] == "AES survey" and check_invoice(inv, AES_SCHEMA) == []
        assert env.provenance(pkg)["pairing"]["details"]["template"] == "nims-aes-survey"

        src = tmp_path / "block.vms"  # measured on 2025-03-04: the file's date, as the instrument wrote it
        src.write_text("VAMAS\n", encoding="utf-8")
        t = time.mktime((2025, 3, 4, 12, 0, 0, 0, 0, -1))
        os.utime(src, (t, t))
        xps_watch.mkdir(exist_ok=True)
        src.rename(xps_watch / "block.vms")
        hold = wait_for(lambda: env.holds(), what="the XPS measurement to wait for its sheet")[0]
        st, page = env.request("GET", f"/sheet/xps01?hold={hold.fingerprint}")
        assert st == 200 and '"default":"2025-03-04"' in page  # prefilled: the user may change it
        st, body = env.post("/api/sheet", {"instrument_id": "xps01", "values": VALUES | {"custom.measurement_method": None},
                                           "hold": hold.fingerprint})
        assert st == 200, body
        pkg = next(p for p in env.wait_packages(2) if p.instrument_id == "xps01")
        inv = env.invoice(pkg)
        assert inv["custom"]["measurement_measured_date"] == "2025-03-04"  # left empty: the measurement's
        assert env.provenance(pkg)["pairing"]["details"]["derived"] == ["measurement_measured_date"]
        assert check_invoice(inv, TEMPLATES / "RDE_XPS/template/scienta_omicron/tasksupport/invoice.schema.json") == []
    finally:
        env.stop()
