"""XRD translators on the real vendor files, through the real sandboxed pipeline."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest

from _helpers import metadata, rde_validate, report, samples_dir
from translators.bruker.raw import parse_raw
from translators.contract import CorruptFile, UnsupportedFile
from translators.pipeline import translate_into


def _translate(tmp_path: Path, rel: str, expect: str) -> Path:
    src = samples_dir() / rel
    data = tmp_path / "pkg" / "data"
    out = translate_into([src], data)
    assert out.ok, out.error
    assert out.translator == expect
    rep = report(data)
    assert rep["provenance"]["sources"][0]["name"] == src.name
    assert rep["counts"]["mapped_terms"] > 10 and rep["counts"]["vendor_keys"] > rep["counts"]["mapped_constant"]
    assert (data / "thumbnail").is_dir() and (data / "main_image").is_dir()
    rde_validate(data)
    return data


def _csv(data: Path, name: str) -> list[str]:
    return (data / "structured" / f"{name}.csv").read_text(encoding="utf-8").splitlines()


def test_rigaku_ras_single_scan(tmp_path: Path) -> None:
    data = _translate(tmp_path, "rigaku_xrd/XRD_RIGAKU.ras", "rigaku")
    meta = metadata(data)
    c, v = meta["constant"], meta["variable"]
    assert len(v) == 1
    assert v[0]["tube_voltage"] == {"value": 40.0, "unit": "kV"}
    assert v[0]["tube_current"] == {"value": 30.0, "unit": "mA"}
    assert v[0]["scan_start"]["value"] == 25.0 and v[0]["scan_stop"]["value"] == 60.0
    assert v[0]["scan_step"] == {"value": 0.01, "unit": "deg"}
    assert v[0]["data_count"] == {"value": 3501}
    assert v[0]["scan_start_time"] == {"value": "2017-11-21T08:32:31"}
    assert c["target_material"] == {"value": "Cu"} and c["sample_name"] == {"value": "Test Sample"}
    assert c["k_alpha1_wavelength"] == {"value": 1.540593, "unit": "Angstrom"}
    rows = _csv(data, "XRD_RIGAKU")
    assert rows[0] == "2theta (deg),intensity (counts),attenuation_factor"
    assert rows[1] == "25,13,1" and len(rows) == 3502
    assert report(data)["status"] == "ok"


def test_rigaku_ras_two_scans_shift_jis(tmp_path: Path) -> None:
    data = _translate(tmp_path, "rigaku_xrd/loop__01_0001_0025-0_C.ras", "rigaku")
    meta = metadata(data)
    v = meta["variable"]
    assert len(v) == 2
    assert [r["data_count"]["value"] for r in v] == [7251, 3501]
    assert v[0]["tube_voltage"]["value"] == 45.0 and v[0]["tube_current"]["value"] == 200.0
    assert v[0]["scan_axis"]["value"] == "2θ/θ"  # decoded from Shift-JIS
    assert v[1]["scan_start"]["value"] == 20.0 and v[1]["scan_stop"]["value"] == 90.0
    assert meta["constant"]["user_group"]["value"] == "システムマネージャ"
    assert meta["constant"]["sample_name"]["value"] == "NIST Si 640c"
    assert len(_csv(data, "loop__01_0001_0025-0_C_scan1")) == 7252
    assert _csv(data, "loop__01_0001_0025-0_C_scan2")[0].endswith("temperature (degC)")
    original = (data / "labedge" / "original_metadata.json").read_text(encoding="utf-8")
    assert "*HW_XG_VOLTAGE_MAX" in original and "多目的高温" in original


def test_rigaku_ras_older_header(tmp_path: Path) -> None:
    data = _translate(tmp_path, "rigaku_xrd/MB120718Si3.ras", "rigaku")
    v = metadata(data)["variable"][0]
    assert (v["tube_voltage"]["value"], v["tube_current"]["value"]) == (40.0, 44.0)
    assert (v["scan_start"]["value"], v["scan_stop"]["value"], v["scan_step"]["value"]) == (2.0, 30.0, 0.02)
    assert v["data_count"]["value"] == 1401 and len(_csv(data, "MB120718Si3")) == 1402


def test_rigaku_rasx(tmp_path: Path) -> None:
    data = _translate(tmp_path, "rigaku_xrd/RM20220915Si01.rasx", "rigaku")
    meta = metadata(data)
    v = meta["variable"][0]
    assert (v["tube_voltage"]["value"], v["tube_current"]["value"]) == (40.0, 44.0)
    assert (v["scan_start"]["value"], v["scan_stop"]["value"], v["scan_step"]["value"]) == (8.5, 30.0, 0.01)
    assert v["data_count"]["value"] == 2151
    assert v["scan_start_time"]["value"] == "2022-11-10T17:20:52+00:00"
    assert meta["constant"]["detector_name"]["value"] == "SC70"
    rows = _csv(data, "RM20220915Si01")
    assert len(rows) == 2152 and rows[1] == "8.5,591,1"


def test_bruker_brml_multi_scan(tmp_path: Path) -> None:
    data = _translate(tmp_path, "xrd_bruker/Sin2Psi.brml", "bruker")
    meta = metadata(data)
    v = meta["variable"]
    assert len(v) == 18
    assert all(r["data_count"]["value"] == 251 for r in v)
    assert v[0]["chi_position"] == {"value": 0.0, "unit": "deg"}
    assert v[-1]["chi_position"]["value"] == 80.0 and v[-1]["phi_position"]["value"] == 90.0
    assert v[0]["tube_voltage"] == {"value": 40.0, "unit": "kV"} and v[0]["tube_current"]["value"] == 40.0
    assert v[0]["scan_start"]["value"] == 38.0 and v[0]["scan_stop"]["value"] == 43.0
    c = meta["constant"]
    assert c["target_material"]["value"] == "Cu" and c["detector_name"]["value"] == "LYNXEYE"
    assert c["k_alpha1_wavelength"] == {"value": 1.5406, "unit": "Angstrom"}
    rows = _csv(data, "Sin2Psi_RawData0")
    assert rows[0] == "measured_time (s),absorption_factor,2theta (deg),theta (deg),intensity (counts)"
    assert rows[1] == "220.8,1,38,19,306" and len(rows) == 252


def test_bruker_raw_v3(tmp_path: Path) -> None:
    data = _translate(tmp_path, "xrd_bruker/BT86.raw", "bruker")
    meta = metadata(data)
    v = meta["variable"][0]
    assert v["data_count"]["value"] == 2374 and v["scan_start"]["value"] == 3.0
    assert v["scan_step"]["value"] == pytest.approx(0.0155922, abs=1e-6)
    assert (v["tube_voltage"]["value"], v["tube_current"]["value"]) == (45, 40)
    assert meta["constant"]["measurement_date"]["value"] == "2010-03-04T20:59:14"
    assert meta["constant"]["raw_format_version"]["value"] == "RAW1.01"
    rows = _csv(data, "BT86")
    assert len(rows) == 2375 and rows[1] == "3,187"


def _raw4(points: list[float], *, truncate: int = 0) -> bytes:
    """A minimal RAW4.00 file laid out as documented (header, one VarInfo segment, one range)."""
    head = b"RAW4.00\0" + b"\0" * 4 + b"04/21/2021\0\0" + b"13:14:15\0\0" + b"\0" * 27
    var = struct.pack("<II", 10, 48) + b"\0" * 4 + b"SAMPLEID".ljust(24, b"\0") + b"quartz-1".ljust(12, b"\0")
    rng = bytearray(160)
    struct.pack_into("<I", rng, 0, 0)
    rng[32:32 + 14] = b"Locked Coupled"
    struct.pack_into("<ddIf", rng, 72, 10.0, 0.02, len(points), 1.0)
    struct.pack_into("<ff", rng, 100, 40.0, 40.0)
    struct.pack_into("<d", rng, 112, 1.5406)
    struct.pack_into("<II", rng, 136, 4, 0)
    body = head + var + bytes(rng) + struct.pack(f"<{len(points)}f", *points)
    return body[: len(body) - truncate] if truncate else body


def test_bruker_raw_v4_layout_and_truncation() -> None:
    meta, ranges, warnings = parse_raw(_raw4([5.0, 6.0, 7.0]), "x.raw")
    assert meta["RAW_VERSION"] == "RAW4.00" and meta["SAMPLEID"] == "quartz-1"
    assert meta["MEASURE_DATETIME"] == "04/21/2021 13:14:15"
    assert len(ranges) == 1 and ranges[0].counts.tolist() == [5.0, 6.0, 7.0] and ranges[0].start == 10.0
    assert ranges[0].meta["GENERATOR_VOLTAGE"] == 40.0 and not warnings
    meta, ranges, warnings = parse_raw(_raw4([5.0, 6.0, 7.0], truncate=4), "x.raw")
    assert ranges[0].counts.tolist() == [5.0, 6.0] and "truncated" in warnings[0]
    with pytest.raises(CorruptFile, match="x.raw"):
        parse_raw(b"RAW4.00\0" + b"\0" * 53 + struct.pack("<II", 10, 4000), "x.raw")
    with pytest.raises(UnsupportedFile, match="version 2"):
        parse_raw(b"RAW2" + b"\0" * 100, "old.raw")


def test_panalytical_xrdml_16(tmp_path: Path) -> None:
    data = _translate(tmp_path, "xrd_panalytical/210520step1_30min.xrdml", "panalytical")
    meta = metadata(data)
    c, v = meta["constant"], meta["variable"][0]
    assert c["tube_voltage"] == {"value": 45.0, "unit": "kV"} and c["tube_current"]["value"] == 40.0
    assert c["measurement_type"]["value"] == "Repeated scan" and c["diffractometer_system"]["value"] == "XPERT-PRO"
    assert c["k_alpha2_ratio"]["value"] == 0.0
    assert v["data_count"]["value"] == 4489 and v["scan_start"]["value"] == 5.00835563
    assert v["counting_time"] == {"value": 50.165, "unit": "s"}
    assert len(_csv(data, "210520step1_30min")) == 4490


def test_panalytical_xrdml_15(tmp_path: Path) -> None:
    data = _translate(tmp_path, "xrd_panalytical/empyrean.xrdml", "panalytical")
    meta = metadata(data)
    v = meta["variable"][0]
    assert (v["scan_start"]["value"], v["scan_stop"]["value"]) == (30.05, 41.75)
    assert v["scan_step"]["value"] == pytest.approx(0.06) and v["data_count"]["value"] == 196
    assert meta["constant"]["detector_name"]["value"] == "PIXcel-3D detector"
    assert meta["constant"]["tube_voltage"]["value"] == 45.0
    rows = _csv(data, "empyrean")
    assert rows[0] == "2theta (deg),intensity (counts)" and rows[1] == "30.05,8"


def test_xrdml_counts_variant_and_list_positions(tmp_path: Path) -> None:
    """Older XRDML (<counts>) with explicit <listPositions>: a variant our samples do not cover."""
    f = tmp_path / "old.xrdml"
    f.write_text("""<?xml version="1.0"?>
<xrdMeasurements xmlns="http://www.xrdml.com/XRDMeasurement/1.0" status="Completed">
 <xrdMeasurement measurementType="Scan" status="Completed">
  <incidentBeamPath><xRayTube name="Cu"><tension unit="kV">40</tension><current unit="mA">30</current>
  <anodeMaterial>Cu</anodeMaterial></xRayTube></incidentBeamPath>
  <scan appendNumber="0" mode="Pre-set time" scanAxis="2Theta" status="Completed">
   <dataPoints><positions axis="2Theta" unit="deg"><listPositions>10 10.5 11.5</listPositions></positions>
   <counts unit="counts">1 2 3</counts></dataPoints></scan></xrdMeasurement></xrdMeasurements>""")
    from translators.panalytical import PanalyticalTranslator
    res = PanalyticalTranslator().translate([f])
    assert res.tables[0].columns["2theta"].tolist() == [10, 10.5, 11.5]
    assert res.tables[0].columns["intensity"].tolist() == [1, 2, 3]
    assert res.constant["tube_voltage"] == "40"
