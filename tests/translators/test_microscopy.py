"""Microscopy translators (Gatan DM, FEI/Thermo TIFF, Zeiss TIFF, JEOL SEM sidecar) on real files.

Values asserted here were read off the vendor files (and SOURCES.md) by hand, not from our output.
"""
from __future__ import annotations

import json
import random
import shutil
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest

from translators.contract import CorruptFile, TranslationResult, Translator, TranslatorError
from translators.fei_tiff import FeiTiffTranslator, map_sections
from translators.gatan_dm import GatanDMTranslator
from translators.jeol_sem import JeolSemTranslator
from translators.zeiss_tiff import ZeissTiffTranslator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _helpers import assert_rde_valid  # noqa: E402
from testpaths import all_sample_files  # noqa: E402

DM, FEI, ZEISS, JEOL = GatanDMTranslator(), FeiTiffTranslator(), ZeissTiffTranslator(), JeolSemTranslator()
ALL = {"gatan-dm": DM, "fei-tiff": FEI, "zeiss-tiff": ZEISS, "jeol-sem": JEOL}
OWN = {  # translator -> its sample files (relative to samples/)
    "gatan-dm": ["gatan_dm/test-EELS_spectrum.dm3", "gatan_dm/EELS_SI.dm4",
                 "gatan_dm/test_diffraction_pattern.dm3", "gatan_dm/multi_signal.dm3"],
    "fei-tiff": ["fei_tiff/FEI-Helios-Ebeam-16bits.tif", "fei_tiff/FEI-Helios-navcam.tif",
                 "fei_tiff/fei-sem-rbc.tif"],
    "zeiss-tiff": ["sem_jeol_zeiss/test_tiff_Zeiss_SEM_512pix.tif",
                   "sem_jeol_zeiss/test_tiff_Zeiss_SEM_1k.tif"],
    "jeol-sem": ["sem_jeol_zeiss/jeol_7800F_sampleA_001.txt"],
}
JEOL_TXT = "sem_jeol_zeiss/jeol_7800F_sampleA_001.txt"


def run(t, samples: Path, *rel: str) -> TranslationResult:
    return t.translate([samples / r for r in rel])


# ---- vocabulary ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(ALL))
def test_vocabulary_is_valid_rde_metadata_def(name, rde_validate, tmp_path):
    t = ALL[name]
    assert isinstance(t, Translator)
    vocab = t.vocabulary()
    assert 15 <= len(vocab) <= 60
    for key, term in vocab.items():
        assert key == key.lower() and " " not in key, key
        assert term["name"]["ja"] and term["name"]["en"] and term["originalName"], key
        assert term["schema"]["type"] in ("string", "number", "integer", "boolean"), key
    assert sorted(t["order"] for t in vocab.values()) == list(range(1, len(vocab) + 1))
    path = Path(sys.modules[type(t).__module__].__file__).with_name("metadata-def.json")
    assert_rde_valid(rde_validate, path)


@pytest.mark.parametrize("name,rel", [(n, r) for n, rels in OWN.items() for r in rels])
def test_every_value_is_in_the_vocabulary(name, rel, samples_dir):
    t = ALL[name]
    vocab = t.vocabulary()
    r = run(t, samples_dir, rel)
    assert r.constant, "nothing mapped"
    for key, value in r.constant.items():
        assert key in vocab and not vocab[key].get("variable"), key
        assert isinstance(value, (str, int, float, bool)), (key, value)
    for row in r.variable:
        for key in row:
            assert key in vocab and vocab[key].get("variable") == 1, key
    json.dumps(r.original, allow_nan=False)  # verbatim vendor keys stay plain JSON


def test_translators_are_registered_as_entry_points():
    names = {ep.name: ep.value for ep in entry_points(group="labedge.translators")}
    for name, t in ALL.items():
        assert names.get(name) == f"{type(t).__module__}:{type(t).__name__}"


# ---- Gatan DM -----------------------------------------------------------------------------

def test_dm3_eels_spectrum(samples_dir):
    r = run(DM, samples_dir, "gatan_dm/test-EELS_spectrum.dm3")
    c = r.constant
    assert c["acceleration_voltage"] == 200.0 and c["file_format"] == "DM3"
    assert c["illumination_mode"] == "STEM NANOPROBE" and c["indicated_magnification"] == 640000.0
    assert c["acquired_at"] == "2016-08-08T19:35:17"
    assert "probe_current" not in c  # DM writes 0 when the microscope did not report it
    [row] = r.variable
    assert row["dispersion"] == 0.5 and row["spectrometer_aperture"] == 5.0
    assert row["number_of_frames"] == 50 and row["exposure_time"] == pytest.approx(7e-5)
    assert row["signal_type"] == "EELS" and row["data_format"] == "Spectrum"
    [table] = r.tables
    e = np.asarray(table.columns["energy_loss"])
    assert len(e) == 2048 and table.units["energy_loss"] == "eV"
    assert e[0] == pytest.approx(-100.0) and e[1] - e[0] == pytest.approx(0.5)  # origin 200 ch
    assert r.preview is not None and len(r.preview.y) == 2048 and not r.arrays


def test_dm3_multi_signal_has_two_signals(samples_dir):
    r = run(DM, samples_dir, "gatan_dm/multi_signal.dm3")
    c = r.constant
    assert c["acceleration_voltage"] == 300.0 and c["indicated_magnification"] == 1e7
    assert c["specimen"] == "PrecipitateA" and c["operator"] == "JohnDoe"
    # local 3:32:41 PM checked against the FILETIME stamp (UTC 20:32:41) -> offset -05:00
    assert c["acquired_at"] == "2019-12-10T15:32:41-05:00"
    assert [v["signal_title"] for v in r.variable] == ["HAADF", "Plot"]
    assert r.variable[0]["pixel_dwell_time"] == pytest.approx(32.4)
    [arr] = r.arrays
    assert arr.data.shape == (512, 512) and arr.data.dtype == np.uint16
    assert arr.axes["x"]["unit"] == "nm" and arr.axes["x"]["scale"] == pytest.approx(0.01775, rel=1e-3)
    assert len(r.tables) == 1 and len(r.tables[0].columns["intensity"]) == 512


def test_dm4_spectrum_image(samples_dir):
    r = run(DM, samples_dir, "gatan_dm/EELS_SI.dm4")
    [row] = r.variable
    assert r.constant["file_format"] == "DM4" and r.constant["camera_length"] == 550.0
    assert row["data_format"] == "Spectrum image" and row["dual_eels"] is True
    assert row["drift_tube_voltage"] == 500.0 and row["dispersion"] == 1.0
    assert r.constant["acquired_at"] == "2019-05-14T20:50:13"  # 14/05/2019: day first
    [arr] = r.arrays
    assert arr.data.shape == (2048, 2, 2) and list(arr.axes) == ["energy_loss", "y", "x"]
    [total] = r.tables
    assert np.asarray(total.columns["intensity_sum"]) == pytest.approx(
        np.asarray(arr.data, dtype=np.float64).sum(axis=(1, 2)))


def test_dm3_diffraction_pattern(samples_dir):
    r = run(DM, samples_dir, "gatan_dm/test_diffraction_pattern.dm3")
    assert r.constant["operation_mode"] == "DIFFRACTION" and r.constant["spherical_aberration"] == 1.31
    assert r.constant["acquired_at"] == "2014-07-09T18:56:37+02:00"
    assert r.variable[0]["exposure_time"] == 0.2 and r.variable[0]["axis_unit"] == "1/nm"
    assert r.arrays[0].data.shape == (87, 87) and r.preview.image.shape == (87, 87)


# ---- FEI / Thermo TIFF --------------------------------------------------------------------

def test_fei_helios_ebeam(samples_dir):
    r = run(FEI, samples_dir, "fei_tiff/FEI-Helios-Ebeam-16bits.tif")
    c = r.constant
    assert c["acceleration_voltage"] == 5.0 and c["working_distance"] == pytest.approx(4.03, abs=0.005)
    assert c["horizontal_field_width"] == pytest.approx(1726.67) and c["detector_name"] == "ETD"
    assert c["magnification"] == pytest.approx(0.2072 / 0.00172667, rel=1e-3)  # ~120x
    assert c["stage_rotation"] == pytest.approx(-2.3611 * 180 / np.pi)  # rad in the file
    assert c["acquired_at"] == "2016-06-13T17:06:40" and c["instrument_model"] == 'Helios NanoLab" 660'
    [arr] = r.arrays
    assert arr.data.shape == (442, 512) and arr.attrs["databar_rows_removed"] == 29
    assert r.original["fei_metadata"]["EBeam"]["HV"] == "5000"  # verbatim text


def test_fei_teneo_rbc(samples_dir):
    c = run(FEI, samples_dir, "fei_tiff/fei-sem-rbc.tif").constant
    assert c["beam_current"] == pytest.approx(50.0) and c["horizontal_field_width"] == pytest.approx(11.84)
    assert c["acceleration_voltage"] == 2.0 and c["spot_size"] == 7.0 and c["dwell_time"] == 10.0
    assert c["magnification"] == pytest.approx(35000, rel=1e-3) and c["instrument_model"] == "Teneo"


def test_fei_navcam_without_beam_values(samples_dir):
    c = run(FEI, samples_dir, "fei_tiff/FEI-Helios-navcam.tif").constant
    assert "acceleration_voltage" not in c and c["beam_type"] == "IRBeam"
    assert c["horizontal_field_width"] == pytest.approx(202732.0)  # from [IRBeam] HFW
    assert c["pixel_width"] == pytest.approx(202732.0e3 / 768, rel=1e-5)  # derived: no [Scan]


def test_fei_magnification_falls_back_to_polaroid_reference():
    ini = {"Beam": {"Beam": "IBeam", "HV": "30000"}, "IBeam": {"HFW": "0.000127", "HV": "30000",
           "BeamCurrent": "1e-10"}, "Image": {"MagCanvasRealWidth": ""}}
    out, warnings = map_sections(ini)
    assert out["magnification"] == 1000.0 and "127 mm" in out["magnification_reference"]
    assert out["acceleration_voltage"] == 30.0 and out["beam_current"] == pytest.approx(100.0)
    assert warnings


# ---- Zeiss --------------------------------------------------------------------------------

def test_zeiss_ultra55(samples_dir):
    r = run(ZEISS, samples_dir, "sem_jeol_zeiss/test_tiff_Zeiss_SEM_512pix.tif")
    c = r.constant
    assert c["acceleration_voltage"] == 5.0 and c["working_distance"] == 3.9
    assert c["magnification"] == 50000.0 and c["detector_name"] == "InLens"  # "50.00 K X"
    assert c["acquired_at"] == "2018-09-25T08:20:42" and c["instrument_model"] == "ULTRA 55"
    assert c["chamber_pressure"] == pytest.approx(4.48e-4)  # 4.48e-6 mbar
    assert any("resampled" in w for w in r.warnings)  # 5.825 nm recorded, 11.65 nm in this file
    assert r.arrays[0].axes["x"]["scale"] == pytest.approx(5965 / 512)
    assert r.original["cz_sem"]["ap_mag"] == "Mag = 50.00 K X"


def test_zeiss_merlin(samples_dir):
    c = run(ZEISS, samples_dir, "sem_jeol_zeiss/test_tiff_Zeiss_SEM_1k.tif").constant
    assert c["acceleration_voltage"] == 25.0 and c["working_distance"] == pytest.approx(14.808)
    assert c["magnification"] == 105.0 and c["detector_name"] == "HE-SE2"
    assert c["pixel_size"] == pytest.approx(2615.0) and c["probe_current"] == pytest.approx(1000.0)
    assert c["dwell_time"] == pytest.approx(0.05) and c["instrument_model"] == "Merlin"


# ---- JEOL ---------------------------------------------------------------------------------

def test_jeol_text_alone(samples_dir):
    r = run(JEOL, samples_dir, JEOL_TXT)
    c = r.constant
    assert c["acceleration_voltage"] == 1.0 and c["magnification"] == 1000.0
    assert c["working_distance"] == 3.78 and c["instrument_model"] == "7800F"
    assert (c["stage_x"], c["stage_y"], c["stage_z"]) == (-3.12, -3.559, 4.6)
    assert c["pixel_size"] == pytest.approx(10000 / 106, rel=1e-4)  # 10 um bar over 106 px
    assert c["acquired_at"] == "2023-07-13T14:38:59"
    assert not r.arrays and r.preview is None and r.warnings
    assert r.original["sidecar"]["$CM_FORMAT"] == "JEOL-SEM"
    assert "µm" in r.original["sidecar"]["$AN_TEXT%0"]  # cp932 "ｵm" read back as micro


@pytest.mark.parametrize("ext", [".bmp", ".tif"])
def test_jeol_text_with_image(samples_dir, tmp_path, ext):
    from PIL import Image

    txt = tmp_path / "sampleA_001.txt"
    shutil.copyfile(samples_dir / JEOL_TXT, txt)
    img = (np.arange(960 * 1280, dtype=np.uint32).reshape(960, 1280) % 251).astype(np.uint8)
    Image.fromarray(img, mode="L").save(tmp_path / f"sampleA_001{ext}")
    paths = [txt, tmp_path / f"sampleA_001{ext}"]
    assert JEOL.sniff(paths) >= 0.9
    r = JEOL.translate(paths)
    [arr] = r.arrays
    assert np.array_equal(np.asarray(arr.data), img) and r.preview.image.shape == (960, 1280)
    assert arr.axes["x"]["scale"] == pytest.approx(10000 / 106, rel=1e-4)
    assert r.constant["image_file_name"] == f"sampleA_001{ext}" and not r.warnings


def test_jeol_image_size_mismatch_is_reported(samples_dir, tmp_path):
    from PIL import Image

    shutil.copyfile(samples_dir / JEOL_TXT, tmp_path / "a.txt")
    Image.fromarray(np.zeros((96, 128), np.uint8)).save(tmp_path / "a.jpg")
    r = JEOL.translate([tmp_path / "a.txt", tmp_path / "a.jpg"])
    assert any("$CM_FULL_SIZE" in w for w in r.warnings) and r.arrays[0].axes == {}


# ---- sniff --------------------------------------------------------------------------------

def test_sniff_own_high_others_zero(samples_dir):
    own = {samples_dir / r: n for n, rels in OWN.items() for r in rels}
    files = all_sample_files()
    assert len(files) >= 30
    for f in files:
        for name, t in ALL.items():
            score = t.sniff([f])
            if own.get(f) == name:
                assert score >= 0.9, (name, f.name, score)
            else:
                assert score <= 0.05, (name, f.name, score)


def test_sniff_never_raises(tmp_path, samples_dir):
    empty = tmp_path / "empty.dm3"
    empty.write_bytes(b"")
    short = tmp_path / "short.tif"
    short.write_bytes(b"II*\x00")
    bad_ifd = tmp_path / "bad.tif"
    bad_ifd.write_bytes(b"II*\x00\xff\xff\xff\x7f")
    cases = [empty, short, bad_ifd, tmp_path, tmp_path / "missing.txt", tmp_path / "empty.dm3"]
    for name, t in ALL.items():
        for c in cases:
            assert t.sniff([c]) == 0.0, (name, c)
        assert t.sniff([]) == 0.0


# ---- corrupt and hostile input ------------------------------------------------------------

@pytest.mark.parametrize("name,rel", [(n, r) for n, rels in OWN.items() for r in rels
                                      if n != "jeol-sem"])
@pytest.mark.parametrize("fraction", [0.5, 0.05])
def test_truncated_file_is_corrupt(name, rel, fraction, samples_dir, tmp_path):
    src = samples_dir / rel
    data = src.read_bytes()
    cut = tmp_path / src.name
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CorruptFile) as exc:
        ALL[name].translate([cut])
    assert src.name in str(exc.value)


def test_dm_hostile_counts_are_rejected_fast(samples_dir, tmp_path):
    data = bytearray((samples_dir / "gatan_dm/test-EELS_spectrum.dm3").read_bytes())
    data[14:18] = b"\xff\xff\xff\xff"  # root group: 4 billion tags
    f = tmp_path / "bomb.dm3"
    f.write_bytes(bytes(data))
    with pytest.raises(CorruptFile, match="bomb.dm3"):
        DM.translate([f])


@pytest.mark.parametrize("name,rel", [("gatan-dm", "gatan_dm/multi_signal.dm3"),
                                      ("gatan-dm", "gatan_dm/EELS_SI.dm4"),
                                      ("fei-tiff", "fei_tiff/fei-sem-rbc.tif"),
                                      ("zeiss-tiff", "sem_jeol_zeiss/test_tiff_Zeiss_SEM_512pix.tif")])
def test_mutated_files_fail_cleanly(name, rel, samples_dir, tmp_path):
    """Flipped bytes in headers and tag trees end in a result or a TranslatorError, nothing else."""
    src = (samples_dir / rel).read_bytes()
    rng = random.Random(5)
    f = tmp_path / Path(rel).name
    deadline = time.monotonic() + 120
    for i in range(60):
        data = bytearray(src)
        for _ in range(4):
            pos = rng.randrange(0, min(len(data), 60000))
            data[pos] = rng.randrange(256)
        f.write_bytes(bytes(data))
        try:
            ALL[name].translate([f])
        except TranslatorError as exc:
            assert f.name in str(exc)
        assert time.monotonic() < deadline, f"mutation {i} made translation too slow"


# ---- through the framework writer ---------------------------------------------------------

@pytest.mark.parametrize("name,rels", [
    ("gatan-dm", ["gatan_dm/EELS_SI.dm4"]), ("gatan-dm", ["gatan_dm/multi_signal.dm3"]),
    ("fei-tiff", ["fei_tiff/fei-sem-rbc.tif"]),
    ("zeiss-tiff", ["sem_jeol_zeiss/test_tiff_Zeiss_SEM_1k.tif"]), ("jeol-sem", [JEOL_TXT])])
def test_written_outputs_validate(name, rels, samples_dir, rde_validate, tmp_path):
    writer = pytest.importorskip("translators.writer")
    t = ALL[name]
    raw = [samples_dir / r for r in rels]
    report = writer.write_outputs(t.translate(raw), t.vocabulary(), raw, tmp_path,
                                  translator=t.name, version=t.version)
    assert report["counts"]["mapped_constant"] >= 10, report["warnings"]
    assert not [w for w in report["warnings"] if "vocabulary" in w or "dropped" in w], report["warnings"]
    meta = json.loads((tmp_path / "meta" / "metadata.json").read_text(encoding="utf-8"))
    assert meta["constant"]
    assert_rde_valid(rde_validate, tmp_path)
    if name != "jeol-sem":
        import h5py
        [h5] = list((tmp_path / "structured").glob("*.h5"))
        with h5py.File(h5) as f:
            ds = f[list(f.keys())[0]]
            assert ds.compression == "gzip"
        assert list((tmp_path / "thumbnail").glob("*.png"))
    if name == "gatan-dm" and "EELS_SI" in rels[0]:
        csv = (tmp_path / "structured" / "EELS_SI_0_EELS_SI_sum.csv").read_text().splitlines()
        assert csv[0].startswith("energy_loss (eV),") and len(csv) == 2049


# ---- format variants the samples do not cover ---------------------------------------------

def test_fei_old_sfeg_tag_ion_beam_without_image_block(tmp_path):
    """Older FEI software writes tag 34680; an ion-beam image names [IBeam]; no [Image] block."""
    import tifffile

    text = ("[User]\r\nDate=01/02/2008\r\nTime=10:11:12 AM\r\nUser=olduser\r\n[Beam]\r\nHV=30000\r\n"
            "Spot=3\r\nBeam=IBeam\r\n[IBeam]\r\nHV=30000\r\nHFW=1.27e-05\r\nWD=0.0165\r\n"
            "BeamCurrent=9.7e-11\r\n[Detectors]\r\nName=ICE\r\nMode=SI\r\n")
    f = tmp_path / "fib.tif"
    tifffile.imwrite(f, np.zeros((8, 16), np.uint8), extratags=[(34680, "s", 0, text, True)])
    assert FEI.sniff([f]) >= 0.9 and ZEISS.sniff([f]) == 0.0
    r = FEI.translate([f])
    c = r.constant
    assert (c["acceleration_voltage"], c["beam_current"], c["working_distance"]) == (30.0, 97.0, 16.5)
    assert c["magnification"] == 10000.0 and "Polaroid" in c["magnification_reference"]
    assert c["pixel_width"] == pytest.approx(12700 / 16)  # HFW / columns when [Scan] is absent
    assert c["acquired_at"] == "2008-01-02T10:11:12" and r.arrays[0].data.shape == (8, 16)


def test_zeiss_units_and_mag_forms_of_other_versions():
    from translators.zeiss_tiff import map_cz_sem

    meta = {"ap_mag": ("Mag", "1.20 K X"), "ap_iprobe": ("I Probe", 250.0, "pA"),
            "ap_actualkv": ("EHT", 800.0, "V"), "ap_wd": ("WD", 5200.0, "µm"),
            "ap_system_vac": ("System Vacuum", 1.0e-5, "Torr"), "dp_detector_type": ("Detector", "SE2"),
            "ap_date": ("Date", "3 Mar 2021"), "ap_time": ("Time", "17:05:09"),
            "ap_width": ("Width", 1.0, "furlong")}
    out, warnings = map_cz_sem(meta)
    assert out["magnification"] == 1200.0 and out["probe_current"] == 250.0
    assert out["acceleration_voltage"] == 0.8 and out["working_distance"] == 5.2
    assert out["chamber_pressure"] == pytest.approx(1.333224e-3) and out["detector_name"] == "SE2"
    assert out["acquired_at"] == "2021-03-03T17:05:09"
    assert "field_width" not in out and any("furlong" in w for w in warnings)


def _dm3(root: list[bytes], little: bool = True) -> bytes:
    """A minimal DM3 writer for fixtures: header, root group, tags."""
    import struct

    o = "<" if little else ">"

    def group(name: str, tags: list[bytes]) -> bytes:
        n = name.encode()
        return b"\x14" + struct.pack(">H", len(n)) + n + b"\x00\x00" + struct.pack(">I", len(tags)) + b"".join(tags)

    def data(name: str, info: list[int], value: bytes) -> bytes:
        n = name.encode()
        return (b"\x15" + struct.pack(">H", len(n)) + n + b"%%%%" + struct.pack(">I", len(info))
                + b"".join(struct.pack(">I", i) for i in info) + value)

    pixels = np.arange(12, dtype=o + "f4")
    image = group("", [group("ImageData", [
        data("Data", [20, 6, 12], pixels.tobytes()),
        data("DataType", [3], struct.pack(o + "i", 2)),
        group("Dimensions", [data("", [5], struct.pack(o + "I", 4)), data("", [5], struct.pack(o + "I", 3))]),
    ]), data("Name", [20, 4, 3], "abc".encode("utf-16-le" if little else "utf-16-be"))] + root)
    body = b"\x00\x00" + struct.pack(">I", 1) + group("ImageList", [image])
    return struct.pack(">III", 3, len(body), 1 if little else 0) + body


@pytest.mark.parametrize("little", [True, False])
def test_dm3_without_image_tags_and_in_either_byte_order(tmp_path, little):
    f = tmp_path / "bare.dm3"
    f.write_bytes(_dm3([], little))
    assert DM.sniff([f]) >= 0.9
    r = DM.translate([f])
    assert r.constant == {"file_format": "DM3"}  # nothing invented
    [row] = r.variable
    assert row["signal_title"] == "abc" and row["dimensions"] == "4 x 3"
    [arr] = r.arrays
    assert np.array_equal(np.asarray(arr.data), np.arange(12, dtype=np.float32).reshape(3, 4))


def test_dm3_dimensions_not_matching_data_is_corrupt(tmp_path):
    import struct

    raw = bytearray(_dm3([]))
    i = raw.index(struct.pack("<I", 4))  # first dimension 4 -> 5: 15 != 12 stored values
    raw[i:i + 4] = struct.pack("<I", 5)
    f = tmp_path / "mismatch.dm3"
    f.write_bytes(bytes(raw))
    with pytest.raises(CorruptFile, match="mismatch.dm3"):
        DM.translate([f])


@pytest.mark.parametrize("rel,expect", [("gatan_dm/EELS_SI.dm4", "gatan-dm"),
                                        ("sem_jeol_zeiss/test_tiff_Zeiss_SEM_512pix.tif", "zeiss-tiff")])
def test_auto_detected_and_translated_in_the_sandbox(rel, expect, samples_dir, rde_validate, tmp_path):
    pipeline = pytest.importorskip("translators.pipeline")
    raw = tmp_path / "raw" / Path(rel).name
    raw.parent.mkdir()
    shutil.copyfile(samples_dir / rel, raw)
    outcome = pipeline.translate_into([raw], tmp_path / "data")
    assert outcome.ok and outcome.translator == expect, outcome.error
    assert_rde_valid(rde_validate, tmp_path / "data")
