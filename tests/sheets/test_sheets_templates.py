"""Templates, sheet values and invoices: every shipped template and every invoice passes rde-validate."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sheets_helpers import FIB_VALUES, OWNER, REPO, run_rde_validate, validate_schema_file

from agent.sheets.form import SheetInvalid, form_model, validate_values
from agent.sheets.invoice import SheetError, build_invoice, check_invoice, parse_sheet
from agent.sheets.templates import TemplateError, check_template, list_templates, load_template

SHIPPED = ["general", "fib-atom-probe", "sc-wire-ic", "xrd-powder", "xps"]

SAMPLE_VALUES = {
    "general": {"custom.operator": "yamada", "custom.atmosphere": "air", "custom.memo": "# note\n- a"},
    "fib-atom-probe": {k: v for k, v in FIB_VALUES.items() if k.startswith("custom.")},
    "sc-wire-ic": {"custom.field_angle": 90, "custom.wire_cross_section": 0.5, "custom.core_cross_section": "0.12",
                   "custom.wire_shape": "tape", "custom.measurement_temperature": 4.2},
    "xrd-powder": {"custom.sample_form": "powder", "custom.spinning": True, "custom.measurement_temperature": 298},
    "xps": {"custom.sample_form": "film", "custom.sputter_time": 60, "custom.charge_neutralization": "true"},
}


def test_all_shipped_templates_are_listed_and_valid() -> None:
    assert set(SHIPPED) <= set(list_templates())
    for name in SHIPPED:
        schema = load_template(name)
        assert check_template(schema) == []
        for key, f in schema["properties"]["custom"]["properties"].items():
            assert f["label"]["ja"] and f["label"]["en"], f"{name}.{key} needs both labels"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_template_passes_rde_validate(name: str, tmp_path: Path) -> None:
    r = validate_schema_file(REPO / "config" / "templates" / f"{name}.json", tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_seed_fields_are_in_the_fib_and_wire_templates() -> None:
    fib = load_template("fib-atom-probe")["properties"]["custom"]["properties"]
    units = {k: f.get("options", {}).get("unit") for k, f in fib.items()}
    assert units["acceleration_voltage"] == "kV" and units["beam_current"] == "pA"
    assert units["mask_inner_diameter"] == "µm" and units["mask_outer_diameter"] == "µm" and units["processing_time"] == "s"
    wire = load_template("sc-wire-ic")["properties"]["custom"]["properties"]
    assert wire["field_angle"]["options"]["unit"] == "degree"
    assert wire["wire_cross_section"]["options"]["unit"] == "mm²" and wire["core_cross_section"]["options"]["unit"] == "mm²"
    assert wire["wire_shape"]["enum"] == ["tape", "round"]


def test_bad_templates_are_reported_by_field(tmp_path: Path) -> None:
    schema = load_template("fib-atom-probe")
    f = schema["properties"]["custom"]["properties"]
    f["beam_current"]["minimum"] = 0.5          # RDE allows integer bounds only
    del f["mask_inner_diameter"]["label"]["ja"]  # every field needs ja and en
    f["ion_species"]["default"] = "He"           # not in enum
    problems = "\n".join(check_template(schema))
    assert "custom.beam_current.minimum" in problems
    assert "custom.mask_inner_diameter.label" in problems
    assert "custom.ion_species.default" in problems
    # rdetoolkit agrees that the float bound and the missing label are invalid
    assert validate_schema_file(schema, tmp_path).returncode == 1
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(schema), encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "agent", "sheet", "check", str(path)], capture_output=True, text=True,
                       cwd=REPO, timeout=60)
    assert r.returncode == 1 and "custom.beam_current.minimum" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "agent", "sheet", "check", "fib-atom-probe"], capture_output=True,
                       text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("bad", ["../../etc/passwd", "FIB", "nope", "", "a/b"])
def test_template_names_are_never_paths(bad: str) -> None:
    with pytest.raises(TemplateError, match="available: .*fib-atom-probe"):
        load_template(bad)


@pytest.mark.parametrize("name", SHIPPED)
def test_invoice_from_each_template_passes_rde_validate(name: str, tmp_path: Path) -> None:
    schema = load_template(name)
    values = validate_values(form_model(name, schema), {"basic.dateSubmitted": "2026-11-20",
                                                        "sample.names": "S-1", **SAMPLE_VALUES[name]})
    inv = build_invoice(schema, values, data_name="run_0001.dat", default_owner_id=OWNER)
    assert set(inv) == {"datasetId", "basic", "custom", "sample"}
    assert inv["sample"]["sampleId"] is None and inv["sample"]["ownerId"] == OWNER
    assert check_invoice(inv, schema) == []
    data = tmp_path / "data"
    (data / "invoice").mkdir(parents=True)
    (data / "tasksupport").mkdir()
    (data / "invoice" / "invoice.json").write_text(json.dumps(inv, ensure_ascii=False), encoding="utf-8")
    (data / "tasksupport" / "invoice.schema.json").write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")
    run_rde_validate(data)


def test_values_are_checked_like_the_page() -> None:
    model = form_model("fib-atom-probe", load_template("fib-atom-probe"))
    good = dict(FIB_VALUES)
    assert validate_values(model, good)["custom.beam_current"] == 48.0
    cases = {
        "custom.beam_current": ("abc", "must be a number"),
        "custom.mask_inner_diameter": (-1, "greater than 0"),
        "custom.acceleration_voltage": (500, "at most 50"),
        "custom.ion_species": ("He", "choose one of"),
        "basic.dateSubmitted": ("2026-02-30", "YYYY-MM-DD"),
        "basic.dataOwnerId": ("short", "56 letters"),
        "sample.names": ("", "required"),
        "sample.composition": ("x" * 300, "at most 255"),
        "sample.description": ("bell\x07", "control characters"),
    }
    for fid, (bad, msg) in cases.items():
        with pytest.raises(SheetInvalid) as ei:
            validate_values(model, {**good, fid: bad})
        assert list(ei.value.errors) == [fid] and msg in ei.value.errors[fid]["en"] and ei.value.errors[fid]["ja"]


def _doc(**over):
    d = {"format": "labedge-sheet", "version": 1, "template": "fib-atom-probe",
         "sheet_id": "0b7c1d2e-aaaa-bbbb-cccc-1234567890ab", "values": dict(FIB_VALUES)}
    d.update(over)
    return json.dumps(d).encode()


def test_sheet_documents_are_hostile_input() -> None:
    doc = parse_sheet(_doc(), "x.sheet.json")
    assert doc.template == "fib-atom-probe" and doc.values["sample.names"] == "W-tip-07"
    bad = {
        b"\xff\xfe not json": "not a UTF-8 JSON",
        b"[]": "not a labedge sample sheet",
        _doc(format="other"): "not a labedge sample sheet",
        _doc(version=7): "version '7' is not supported",
        _doc(template="../../../etc/passwd"): "not valid",
        _doc(template="xrd-single"): "unknown template",
        _doc(values={**FIB_VALUES, "custom.beam_current": "1e400"}): "field custom.beam_current: must be a number",
        _doc(values={**FIB_VALUES, "custom.mask_outer_diameter": {"$ref": "file:///etc/passwd"}}): "must be a number",
        _doc(values={f"k{i}": 1 for i in range(500)}): "too many values",
        b" " * 300_000: "larger than 256 KiB",
    }
    for data, msg in bad.items():
        with pytest.raises(SheetError, match="x.sheet.json") as ei:
            parse_sheet(data, "x.sheet.json")
        assert msg in str(ei.value), (data[:60], str(ei.value))
    # a hostile sheet id is replaced, never used as a name
    assert parse_sheet(_doc(sheet_id="../../x"), "x.sheet.json").sheet_id != "../../x"
