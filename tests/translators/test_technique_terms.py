"""The settings that define a technique (issue 14): a diffractometer's attenuator and detector
distance, read by label and checked against the real files' own text, not against our output."""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from _helpers import SAMPLES
from translators import progress
from translators.registry import load_registry
from translators.writer import write_outputs

S = SAMPLES.resolve() if SAMPLES.is_dir() else SAMPLES
V = (SAMPLES.parent / "samples-variants").resolve()
_REG = load_registry()


@pytest.fixture(scope="module")
def out_root(tmp_path_factory) -> Path:
    if not S.is_dir():
        pytest.skip("../shared/samples is absent")
    return tmp_path_factory.mktemp("technique")


def run(out_root: Path, path: Path, expect: str) -> tuple[dict[str, Any], dict[str, Any]]:
    t, _ = _REG.choose([path])
    assert t is not None and t.name == expect
    result, error = progress.translate(t, [path])
    d = out_root / path.name
    rep = write_outputs(result, t.vocabulary(), [path], d, translator=t.name, version=t.version, error=error)
    assert rep["status"] in ("ok", "partial") and not rep["unparsed_values"], rep
    return json.loads((d / "meta" / "metadata.json").read_text(encoding="utf-8")), rep


def _ras_header(path: Path) -> dict[str, str]:
    """The first scan's header, read independently of the translator (cp932, '*KEY "value"')."""
    out: dict[str, str] = {}
    for line in path.read_bytes().decode("cp932", "replace").splitlines():
        if line.startswith("*RAS_INT_START"):
            break
        m = re.match(r'^\*(\S+)\s+"(.*)"', line)
        if m:
            out.setdefault("*" + m[1], m[2])
    return out


@pytest.mark.parametrize("name", ["MB120718Si3.ras", "XRD_RIGAKU.ras", "loop__01_0001_0025-0_C.ras"])
def test_rigaku_ras_attenuator_is_read_by_its_axis_label(out_root: Path, name: str) -> None:
    path = S / "rigaku_xrd" / name
    head = _ras_header(path)
    idx = next(k.rsplit("-", 1)[1] for k, v in head.items()
               if k.startswith("*MEAS_COND_AXIS_NAME_INTERNAL-") and v == "Attenuator")
    meta, rep = run(out_root, path, "rigaku")
    row = meta["variable"][0]
    assert row["attenuator_position"]["value"] == head[f"*MEAS_COND_AXIS_POSITION-{idx}"]
    assert row["attenuator_auto_mode"]["value"] is (head["*HW_R_ATTENUATER_AUTOMODE"] == "1")
    opt = [v for k, v in head.items() if k.startswith("*HW_R_OPT_NAME-") and "Attenuator" in v]
    if opt:
        assert meta["constant"]["attenuator_name"]["value"] == opt[0]
    # the report counts the indexed key the label led to as mapped; its neighbours stay unmapped
    unmapped = {k.rsplit("/", 1)[-1] for k in rep["unmapped_vendor_keys"]}
    assert f"*MEAS_COND_AXIS_POSITION-{idx}" not in unmapped
    assert f"*MEAS_COND_AXIS_POSITION-{int(idx) - 1}" in unmapped


def test_the_attenuator_index_differs_between_instruments_so_a_fixed_index_would_be_wrong() -> None:
    if not S.is_dir():
        pytest.skip("../shared/samples is absent")
    idx = {n: next(k for k, v in _ras_header(S / "rigaku_xrd" / n).items()
                   if k.startswith("*MEAS_COND_AXIS_NAME_INTERNAL-") and v == "Attenuator")
           for n in ("MB120718Si3.ras", "XRD_RIGAKU.ras")}
    assert idx["MB120718Si3.ras"] != idx["XRD_RIGAKU.ras"]
    # and the display name may be Japanese: the internal name is the label to trust
    loop = _ras_header(S / "rigaku_xrd" / "loop__01_0001_0025-0_C.ras")
    assert loop["*MEAS_COND_AXIS_NAME-26"] == "アッテネータ" and loop["*MEAS_COND_AXIS_NAME_INTERNAL-26"] == "Attenuator"


def _rasx_conditions(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        return zf.read("Data0/MesurementConditions0.xml").decode("utf-8-sig")


@pytest.mark.parametrize("rel", ["samples/rigaku_xrd/RM20220915Si01.rasx",
                                 "samples-variants/rigaku_xrd/SmartLabXE_sample.rasx"])
def test_rigaku_rasx_detector_distance_and_attenuator_by_label(out_root: Path, rel: str) -> None:
    path = S.parent / rel
    if not path.is_file():
        pytest.skip(f"{rel} is absent")
    xml = _rasx_conditions(path)
    dist = re.search(r'<Distance\s+To="Detector"\s+From="AttachmentStage"\s+Unit="(\w+)"\s+Value="([\d.]+)"', xml)
    src = re.search(r'<Distance\s+To="AttachmentStage"\s+From="XrayGenerator"\s+Unit="(\w+)"\s+Value="([\d.]+)"', xml)
    auto = re.search(r"<AttenuatorAutoMode>(\w+)</AttenuatorAutoMode>", xml)
    meta, _ = run(out_root, path, "rigaku")
    c = meta["constant"]
    assert dist and c["detector_distance"] == {"value": float(dist[2]), "unit": dist[1]}
    assert src and c["source_to_sample_distance"] == {"value": float(src[2]), "unit": src[1]}
    assert auto and meta["variable"][0]["attenuator_auto_mode"]["value"] is (auto[1] == "true")
    axis = re.search(r'<Axis\s+Name="Attenuator"\s+Unit="[^"]*"\s+Offset="[^"]*"\s+Position="([^"]*)"', xml)
    if axis:  # the SmartLab XE sample has no attenuator axis, and so no position
        assert meta["variable"][0]["attenuator_position"]["value"] == axis[1]
    else:
        assert "attenuator_position" not in meta["variable"][0]
    assert float(dist[2]) in (331.0, 351.5)  # the two instruments differ: read, not assumed


def test_bruker_brml_secondary_radius_and_rotary_absorber(out_root: Path) -> None:
    path = S / "xrd_bruker" / "Sin2Psi.brml"
    with zipfile.ZipFile(path) as zf:
        xml = zf.read("Experiment0/RawData0.xml").decode("utf-8-sig")
    sec = re.search(r"<SecondaryTracks>.*?<Radius Unit=\"(\w+)\" Value=\"([\d.]+)\"", xml, re.S)
    absorber = re.search(r'LogicName="RotaryAbsorber".*?<Setting>(\w+)</Setting>', xml, re.S)
    meta, _ = run(out_root, path, "bruker")
    assert sec and meta["constant"]["detector_distance"] == {"value": float(sec[2]), "unit": sec[1]}
    assert absorber and meta["constant"]["absorber_setting"]["value"] == absorber[1] == "Auto"


@pytest.mark.parametrize("name", ["empyrean.xrdml", "210520step1_30min.xrdml"])
def test_panalytical_diffracted_beam_radius(out_root: Path, name: str) -> None:
    path = S / "xrd_panalytical" / name
    xml = path.read_text(encoding="utf-8")
    rad = re.search(r"<diffractedBeamPath>\s*<radius unit=\"(\w+)\">([\d.]+)</radius>", xml)
    slit = re.search(r"<distanceToSample unit=\"(\w+)\">([\d.]+)</distanceToSample>", xml)
    meta, _ = run(out_root, path, "panalytical")
    assert rad and meta["constant"]["diffracted_beam_radius"] == {"value": float(rad[2]), "unit": rad[1]}
    assert slit and meta["constant"]["divergence_slit_distance"] == {"value": float(slit[2]), "unit": slit[1]}


def _h5(path: Path, name: str) -> Any:
    import h5py

    with h5py.File(path, "r") as f:
        return f[name][()]


@pytest.mark.parametrize("rel,key,dataset,unit", [
    ("samples/nexus_hdf5/538039.nxs", "attenuator_transmission", "entry1/before_scan/gains_atten/Transmission", None),
    ("samples/nexus_hdf5/538039.nxs", "attenuator_setting", "entry1/before_scan/gains_atten/Atten", None),
    ("samples/nexus_hdf5/Focus_2021-03-16_051.hdf5", "rf_attenuation", "entry1/collection/RF_attenuation/value", "dB"),
    ("samples/nexus_hdf5/AgBehenate_228.hdf5", "detector_distance", "entry/instrument/detector/distance", "mm"),
    ("samples-variants/nexus_hdf5/sans2009n012333.hdf", "attenuator_selection", "entry1/SANS/attenuator/selection", None),
])
def test_nexus_attenuation_and_distance(out_root: Path, rel: str, key: str, dataset: str, unit: str | None) -> None:
    path = S.parent / rel
    if not path.is_file():
        pytest.skip(f"{rel} is absent")
    meta, rep = run(out_root, path, "nexus")
    expected = float(_h5(path, dataset).reshape(-1)[0])
    entry = meta["constant"][key]
    assert entry["value"] == pytest.approx(expected) and entry.get("unit") == unit
    assert not any(dataset in k for k in rep.get("unmapped_vendor_keys", []) if isinstance(k, str))
