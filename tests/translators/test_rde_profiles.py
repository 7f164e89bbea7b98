"""Output profiles (issue 14 §3): for every shared sample the official NIMS program ran on, our
metadata.json in the profile carries each official key with an equal value, but for the named
exceptions (docs/rde.md); it passes rde-validate against the official metadata-def; and the
coverage table in docs/translators.md is this test's own count (it cannot drift)."""
from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest

from _helpers import SAMPLES, assert_rde_valid
from translators import profiles
from translators.pipeline import translate_into

OFFICIAL = SAMPLES.parent / "rde-official"
TEMPLATES = OFFICIAL / "templates"
DOC = Path(__file__).resolve().parents[2] / "docs" / "translators.md"
PROFILE_OF = {"RDE_XRD": "nims-xrd-rigaku", "RDE_XPS_scienta_omicron": "nims-xps-vamas",
              "RDE_EM_TemDm3_EELS": "nims-temdm3", "RDE_EM_TemDm3_TED": "nims-temdm3", "RDE_EM_Em": "nims-em",
              "RDE_AES_survey": "nims-aes-survey"}
CASES = sorted(p for p in (OFFICIAL / "outputs").glob("*/*.metadata.json") if p.parent.name in PROFILE_OF) \
    if OFFICIAL.is_dir() else []

#: official values labedge deliberately does not copy (docs/rde.md), by key
DIFFERS = {
    "xray_power": "the official program writes the source energy (eV) into this W term",
    "abscissa_end": "the official program counts the values of every ordinate variable, not the points",
    "file_last_modified_date_time": "the official value is the mtime of the official program's own copy",
    "ras.memo": "the official program strips every '*' from text values",
}
#: official values that are placeholders, not the file's: labedge leaves the term out
PLACEHOLDERS = {"[]": "an empty DM text written as the string '[]'", "legend": "TemDm3's default for a missing specimen"}


def _sample(official: Path) -> Path:
    family, name = official.name.removesuffix(".metadata.json").split("__", 1)
    return SAMPLES / family / name


def _equal(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-9)
    return a == b


def compare(ours: dict, theirs: dict) -> tuple[int, int, int, list]:
    """(official keys, covered, equal, unexplained differences)."""
    rows_o, rows_t = [ours["constant"], *ours["variable"]], [theirs["constant"], *theirs["variable"]]
    total = covered = equal = 0
    bad = []
    for mine, off in zip(rows_o + [{}] * len(rows_t), rows_t):
        for key, e in off.items():
            total += 1
            if key not in mine:
                if e.get("value") not in PLACEHOLDERS and key not in DIFFERS:
                    bad.append((key, "missing", e))
                continue
            covered += 1
            m = mine[key]
            # a unit the file states is added where the template takes it from the file ($KEY)
            same_unit = m.get("unit") == e.get("unit") or "unit" not in e
            if _equal(m["value"], e["value"]) and same_unit:
                equal += 1
            elif key not in DIFFERS:
                bad.append((key, m, e))
    return total, covered, equal, bad


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[Path, tuple]:
    out = {}
    for official in CASES:
        sample = _sample(official)
        base = tmp_path_factory.mktemp(official.parent.name)
        data = base / "data"
        (data / "raw").mkdir(parents=True)  # as the agent and `labedge translate` lay it out
        members = sorted(sample.iterdir()) if sample.is_dir() else [sample]  # a JEOL .A folder = one measurement
        raws = [data / "raw" / m.name for m in members]
        for m, r in zip(members, raws):
            shutil.copy2(m, r)
        outcome = translate_into(raws, data, timeout_s=60)
        summary = profiles.apply_profile(data, PROFILE_OF[official.parent.name], TEMPLATES)
        ours = json.loads((data / "meta" / "metadata.json").read_text(encoding="utf-8"))
        out[official] = (outcome, summary, data, compare(ours, json.loads(official.read_text(encoding="utf-8"))))
    return out


def _id(p: Path) -> str:
    return f"{p.parent.name}/{p.name.split('__', 1)[1].removesuffix('.metadata.json')}"


@pytest.mark.parametrize("official", CASES, ids=[_id(c) for c in CASES])
def test_official_keys_equal_but_for_named_exceptions(official: Path, results, rde_validate: Path) -> None:
    outcome, summary, data, (total, covered, equal, bad) = results[official]
    assert outcome.status in ("ok", "partial"), outcome.report
    assert not bad, bad
    assert equal >= 1 and covered <= total
    assert json.loads((data / "labedge" / "labedge_metadata.json").read_text())["constant"]  # richer terms kept
    assert_rde_valid(rde_validate, data)


def coverage_table(results) -> str:
    lines = ["| official template | sample | profile | official keys | covered | equal |", "|---|---|---|---|---|---|"]
    for official in CASES:
        total, covered, equal, _ = results[official][3]
        lines.append(f"| {official.parent.name} | {_id(official).split('/', 1)[1]} | {PROFILE_OF[official.parent.name]} "
                     f"| {total} | {covered} | {equal} |")
    return "\n".join(lines)


BEGIN, END = "<!-- rde-profile-coverage: begin (tests/translators/test_rde_profiles.py) -->", "<!-- rde-profile-coverage: end -->"


def test_coverage_table_in_docs_is_the_measured_one(results) -> None:
    if not CASES:
        pytest.skip("no official outputs")
    table = coverage_table(results)
    text = DOC.read_text(encoding="utf-8")
    if os.environ.get("LABEDGE_UPDATE_DOCS") == "1":
        head, _, rest = text.partition(BEGIN)
        tail = rest.partition(END)[2] if rest else ""
        DOC.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}" if rest else f"{text}\n{BEGIN}\n{table}\n{END}\n", encoding="utf-8")
        text = DOC.read_text(encoding="utf-8")
    assert f"{BEGIN}\n{table}\n{END}" in text, "docs/translators.md coverage table is stale: rerun with LABEDGE_UPDATE_DOCS=1"


@pytest.mark.parametrize("family,name,profile,least", [
    ("gatan_dm", "EELS_SI.dm4", "nims-temdm3", 10),        # TemDm3 rejects .dm4
    ("gatan_dm", "multi_signal.dm3", "nims-temdm3", 5),    # hyperspy gives two signals: both programs fail
    ("gatan_dm", "multi_signal.dm3", "nims-em", 2),
    ("vamas", "irregular.vms", "nims-xps-vamas", 20),       # the RDE_XPS reader fails on IRREGULAR
])
def test_files_the_official_programs_fail_on_get_valid_packages(family: str, name: str, profile: str, least: int,
                                                                tmp_path: Path, rde_validate: Path) -> None:
    data = tmp_path / "data"
    raw = data / "raw" / name
    raw.parent.mkdir(parents=True)
    shutil.copy2(SAMPLES / family / name, raw)
    assert translate_into([raw], data, timeout_s=60).status in ("ok", "partial")
    summary = profiles.apply_profile(data, profile, TEMPLATES)
    assert summary["written"] >= least, summary
    template = json.loads((data / "tasksupport" / "metadata-def.json").read_text())
    meta = json.loads((data / "meta" / "metadata.json").read_text())
    assert set(meta["constant"]) | {k for r in meta["variable"] for k in r} <= set(template)
    assert_rde_valid(rde_validate, data)


def test_an_unknown_profile_or_missing_template_is_named(tmp_path: Path) -> None:
    with pytest.raises(profiles.ProfileError, match="nims-nope"):
        profiles.get("nims-nope")
    with pytest.raises(profiles.ProfileError, match="metadata-def"):
        profiles.load_def(tmp_path / "metadata-def.json")
    assert profiles.suggest("vamas") == ["nims-xps-vamas"] and "nims-temdm3" in profiles.suggest("gatan-dm")


def _profiled(tmp_path: Path, src: Path, profile: str) -> tuple[dict, Path]:
    data = tmp_path / src.name / "data"
    raw = data / "raw" / src.name
    raw.parent.mkdir(parents=True)
    shutil.copy2(src, raw)
    assert translate_into([raw], data, timeout_s=60).status in ("ok", "partial")
    profiles.apply_profile(data, profile, TEMPLATES)
    return json.loads((data / "meta" / "metadata.json").read_text(encoding="utf-8")), data


def test_phi_spe_and_pro_in_the_ulvac_phi_template(tmp_path: Path, rde_validate: Path) -> None:
    """No official output exists (its program needs MPExport.exe): values are checked against the
    files' own header lines, and validity against the official metadata-def."""
    spe, data = _profiled(tmp_path, SAMPLES / "xps_aes_other" / "SnO2_10nm.spe", "nims-xps-phi")
    assert_rde_valid(rde_validate, data)
    # "XrayPower: 119.75 W", "AnalyserWorkFcn: 4.506 eV", "AcqFileDate: 2024 1 22"
    row = spe["variable"][0]
    assert row["xray_power"] == {"value": "119.75", "unit": "W"}
    assert row["analyzer_work_function"] == {"value": "4.506", "unit": "eV"}
    assert spe["constant"]["measurement.measured_date"] == {"value": "2024-01-22"}
    # "SpectralRegDef: 1 1 Su1s 111 1751 -0.8000 1400.0000 0.0000 ... 0.120000 224.00 AREA", SurvNumCycles 3
    assert (row["peak_name"]["value"], row["abscissa_start"]["value"], row["abscissa_end"]["value"],
            row["pass_energy"], row["total_acquisition_number"]["value"]) == \
        ("Survey", "1400.0000", "0.0000", {"value": "224.00", "unit": "eV"}, "3")
    pro, data = _profiled(tmp_path, SAMPLES.parent / "samples-variants" / "xps_aes_other" / "SnO2_10nm_1.pro",
                          "nims-xps-phi")
    assert_rde_valid(rde_validate, data)
    # four regions (Su1s, C1s, Si2p, Sn3d5) x one depth layer "1 Layer3 ... 0.50 20"
    assert [(r["peak_name"]["value"], r.get("transitions", {}).get("value")) for r in pro["variable"]] == \
        [("Survey", None), ("C", "1s"), ("Si", "2p"), ("Sn", "3d5")]
    assert {r["cycle_control_preset"]["value"] for r in pro["variable"]} == {"0.50min 20cyc"}
    assert pro["constant"]["total_cycle_number"] == {"value": "20"}
    assert pro["constant"]["time_from_sputtering_to_measurement"] == {"value": "15.0", "unit": "s"}


def test_jeol_sem_pair_in_the_em_tiff_template(tmp_path: Path, rde_validate: Path) -> None:
    """A JEOL SEM image with its $CM_ sidecar (no official output): the pixel numbers are the image's."""
    from PIL import Image

    folder = SAMPLES.parent / "samples-variants" / "sem_jeol_zeiss"
    data = tmp_path / "data"
    (data / "raw").mkdir(parents=True)
    raws = []
    for name in ("jeol_8530F_image000.tif", "jeol_8530F_image000.txt"):
        shutil.copy2(folder / name, data / "raw" / name)
        raws.append(data / "raw" / name)
    assert translate_into(raws, data, timeout_s=60).status in ("ok", "partial")
    summary = profiles.apply_profile(data, "nims-em", TEMPLATES)
    assert summary["metadata_def"] == "metadata-def_Tiff.json"
    meta = json.loads((data / "meta" / "metadata.json").read_text())["constant"]
    with Image.open(folder / "jeol_8530F_image000.tif") as im:
        assert (meta["pixel_number_along_x_axis"]["value"], meta["pixel_number_along_y_axis"]["value"]) == im.size
    assert meta["file_last_modified_date_time"]["value"][:4].isdigit()
    assert_rde_valid(rde_validate, data)


def test_unforeseen_vendor_values_keep_labedge_vocabulary(tmp_path: Path) -> None:
    """A builder that meets values it did not foresee says so; the translation is not lost."""
    _, data = _profiled(tmp_path, SAMPLES / "gatan_dm" / "test_diffraction_pattern.dm3", "nims-temdm3")
    original = json.loads((data / "labedge" / "original_metadata.json").read_text())
    for img in original["tags"]["ImageList"].values():
        img["ImageData"]["Dimensions"] = {"[0]": "eighty-seven"}  # hostile: not a number
    (data / "labedge" / "original_metadata.json").write_text(json.dumps(original))
    before = (data / "meta" / "metadata.json").read_bytes()
    with pytest.raises(profiles.ProfileError, match="nims-temdm3 could not map.*ValueError"):
        profiles.apply_profile(data, "nims-temdm3", TEMPLATES)
    assert (data / "meta" / "metadata.json").read_bytes() == before  # nothing half-written
