"""XAFS (9809, XDI, Athena) and NeXus/HDF5 translators on the real files plus small variants.

Values asserted here were read off the vendor files by hand (and SOURCES.md), not from our output.
"""
from __future__ import annotations

import gzip
import json
import sys
from importlib.metadata import entry_points
from pathlib import Path

import h5py
import numpy as np
import pytest

from translators.contract import CorruptFile, TranslationResult, Translator, TranslatorError
from translators.nexus import NexusTranslator
from translators.xafs import AthenaTranslator, Xafs9809Translator, XdiTranslator
from translators.xafs.perl_literal import parse_statements

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _helpers import assert_cuts_are_corrupt, assert_rde_valid, damaged_copies, write_checked  # noqa: E402
from testpaths import all_sample_files  # noqa: E402

ALL = {"xafs-9809": Xafs9809Translator(), "xafs-xdi": XdiTranslator(), "xafs-athena": AthenaTranslator(),
       "nexus": NexusTranslator()}
OWN = {"xafs-9809": ["xafs/PF9A_2022.dat"], "xafs-xdi": ["xafs/cu_metal_rt.xdi"],
       "xafs-athena": ["xafs/fe_athena.prj"],
       "nexus": ["nexus_hdf5/538039.nxs", "nexus_hdf5/AgBehenate_228.hdf5",
                 "nexus_hdf5/Focus_2021-03-16_051.hdf5"]}


def run(t, samples: Path, *rel: str) -> TranslationResult:
    return t.translate([samples / r for r in rel])


# ---- contract, vocabulary, registration -----------------------------------------------------

@pytest.mark.parametrize("name", ["xafs-9809", "nexus"])  # the three XAFS readers share one file
def test_vocabulary_is_valid_rde_metadata_def(name, rde_validate):
    t = ALL[name]
    vocab = t.vocabulary()
    for key, term in vocab.items():
        assert key == key.lower() and " " not in key and key.isascii(), key
        assert term["name"]["ja"] and term["name"]["en"] and term["originalName"], key
        assert term["schema"]["type"] in ("string", "number", "integer"), key
    assert sorted(v["order"] for v in vocab.values()) == list(range(1, len(vocab) + 1))
    path = Path(sys.modules[type(t).__module__].__file__).with_name("metadata-def.json")
    assert_rde_valid(rde_validate, path)


def test_registered_as_entry_points():
    eps = {ep.name: ep for ep in entry_points(group="labedge.translators")}
    for name, t in ALL.items():
        assert isinstance(t, Translator) and t.name == name
        assert name in eps and eps[name].load() is type(t)


@pytest.mark.parametrize("name,rel", [(n, r) for n, rs in OWN.items() for r in rs])
def test_every_value_is_in_the_vocabulary(name, rel, samples_dir):
    t = ALL[name]
    vocab = t.vocabulary()
    r = run(t, samples_dir, rel)
    assert r.constant and r.preview is not None and (r.tables or r.arrays)
    for key, value in r.constant.items():
        assert key in vocab and not vocab[key].get("variable"), key
        assert isinstance(value, (str, int, float)) and not isinstance(value, bool), (key, value)
    for row in r.variable:
        for key in row:
            assert key in vocab and vocab[key].get("variable") == 1, key
    json.dumps(r.original, allow_nan=False, default=str)


@pytest.mark.parametrize("name", sorted(ALL))
def test_sniff_own_high_others_zero(name, samples_dir):
    t = ALL[name]
    for f in all_sample_files():
        rel = f.relative_to(samples_dir).as_posix()
        score = t.sniff([f])
        if rel in OWN[name]:
            assert score >= 0.9, (rel, score)
        else:
            assert score <= 0.05, (rel, score)


@pytest.mark.parametrize("name", sorted(ALL))
def test_sniff_never_raises(name, tmp_path):
    empty = tmp_path / "empty.dat"
    empty.write_bytes(b"")
    hdf_head = tmp_path / "cut.h5"
    hdf_head.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 20)  # signature only: not openable
    gz = tmp_path / "x.prj"
    gz.write_bytes(gzip.compress(b"not athena")[:15])
    for paths in ([empty], [hdf_head], [gz], [tmp_path / "missing"], [tmp_path], []):
        score = ALL[name].sniff(paths)
        assert 0.0 <= score <= (0.5 if name == "nexus" else 0.0)


# ---- 9809 ---------------------------------------------------------------------------------------

def test_9809_pf9a(samples_dir):
    r = run(ALL["xafs-9809"], samples_dir, "xafs/PF9A_2022.dat")
    c = r.constant
    assert c["facility"] == "KEK-PF" and c["beamline"] == "BL9A" and c["sample_name"] == "Fe010"
    assert c["ring_energy"] == 2.5 and c["ring_current_start"] == 425.1 and c["ring_current_end"] == 449.9
    assert c["monochromator"] == "Si(111)" and c["mono_d_spacing"] == 3.13551 and c["initial_angle"] == 13.9325
    assert c["measurement_mode"] == "fluorescence" and c["number_of_points"] == 1426
    assert c["number_of_blocks"] == 6 and c["number_of_channels"] == 3 and c["counter"] == "Ortec"
    assert c["start_time"] == "2022-05-11T17:26:00" and c["end_time"] == "2022-05-11T18:33:00"
    assert [b["block_points"] for b in r.variable] == [70, 15, 1050, 30, 160, 101]
    assert r.variable[2]["block_step"] == 0.1 and r.variable[2]["block_dwell_time"] == 2.0
    [t] = r.tables
    e = t.columns["energy"]
    assert len(e) == 1426 and t.units["energy"] == "eV"
    # Bragg: 12398.42 / (2 x 3.13551 x sin 17.41446°) = 6606.1 eV, block 1 starts at 6606.2
    assert e[0] == pytest.approx(6606.2, abs=0.2) and e[-1] == pytest.approx(8211.2, abs=0.2)
    assert t.columns["channel 2"][0] == 1792467 and t.columns["channel 3"][-1] == 254754


def test_9809_transmission_variant_and_truncation(samples_dir, tmp_path):
    lines = (samples_dir / "xafs/PF9A_2022.dat").read_text().splitlines()
    # Transmission: same layout (time, I0, I channels), other mode on line 6.
    p = tmp_path / "trans.dat"
    p.write_text("\n".join(ln.replace("Fluorescence( 3)", "Transmission( 2)") for ln in lines) + "\n")
    r = ALL["xafs-9809"].translate([p])
    assert r.constant["measurement_mode"] == "transmission" and r.preview.y_label == "ln(I0/I)"
    assert r.preview.y[0] == pytest.approx(np.log(1792467 / 14016))
    short = tmp_path / "short.dat"
    short.write_text("\n".join(lines[:500]) + "\n")
    with pytest.raises(CorruptFile, match=r"short\.dat: header declares Points=1426 but only 481"):
        ALL["xafs-9809"].translate([short])


# ---- XDI ----------------------------------------------------------------------------------------

def test_xdi_cu_foil(samples_dir):
    r = run(ALL["xafs-xdi"], samples_dir, "xafs/cu_metal_rt.xdi")
    c = r.constant
    assert c["element"] == "Cu" and c["edge"] == "K" and c["edge_energy"] == 8980.0
    assert c["monochromator"] == "Si 111" and c["mono_d_spacing"] == 3.13553 and c["ring_energy"] == 7.0
    assert c["beamline"] == "APS 13ID" and c["sample_name"] == "Cu" and c["sample_preparation"] == "Cu metal foil"
    assert c["start_time"] == "2001-06-26T22:27:31" and c["measurement_mode"] == "transmission"
    assert c["comment"] == "Cu foil Room Temperature" and c["number_of_points"] == 408
    [t] = r.tables
    assert list(t.columns) == ["energy", "i0", "itrans", "mutrans"] and t.units["energy"] == "eV"
    assert t.columns["energy"][0] == 8779.0 and t.columns["mutrans"][0] == -1.3070486
    assert r.original["fields"]["GSE.EXTRA"] == "config 1"


def test_xdi_variant_without_column_fields_kev_and_facility(tmp_path):
    p = tmp_path / "min.xdi"
    p.write_text("# XDI/1.0\n# Facility.name: SPring-8\n# Facility.energy: 8 GeV\n"
                 "# Mono.d_spacing: 0.3135 nm\n# Element.symbol: Zn\n# Element.edge: K\n"
                 "#----\n# energy mufluor\n9.600 0.1\n9.610 0.2\n9.620 0.4\n")
    r = ALL["xafs-xdi"].translate([p])
    c = r.constant
    assert c["facility"] == "SPring-8" and c["ring_energy"] == 8.0 and c["mono_d_spacing"] == 3.135
    assert c["element"] == "Zn" and c["measurement_mode"] == "fluorescence" and c["number_of_points"] == 3
    assert list(r.tables[0].columns) == ["energy", "mufluor"]
    bad = tmp_path / "bad.xdi"
    bad.write_text("# XDI/1.0\n#----\n# e mu\n1 2\n3\n")
    with pytest.raises(CorruptFile, match=r"bad\.xdi: line 5: 1 values, expected 2"):
        ALL["xafs-xdi"].translate([bad])


# ---- Athena -------------------------------------------------------------------------------------

def test_athena_project(samples_dir):
    r = run(ALL["xafs-athena"], samples_dir, "xafs/fe_athena.prj")
    assert r.constant["number_of_groups"] == 3 and r.constant["software"] == "Demeter 0.9.26"
    assert r.constant["element"] == "Fe"
    labels = [v["group_label"] for v in r.variable]
    assert labels == ["fe2o3_rt1.xmu", "fe3c_rt.xdi", "feo_rt1.xmu"]
    g = r.variable[0]
    assert g["e0"] == 7125.6176 and g["rbkg"] == 0.8 and g["fft_kmin"] == 3.0 and g["group_points"] == 412
    assert g["pre_edge_start"] == -150.0 and g["norm_end"] == 858.616 and g["group_edge"] == "K"
    t = r.tables[0]
    assert t.columns["energy"][0] == 6911.8277 and t.units["energy"] == "eV" and len(t.columns["mu(E)"]) == 412


def test_perl_literals_are_parsed_never_evaluated(tmp_path):
    src = ("# Athena project file -- Demeter version 0.9.26\n"
           "@args = ('label','a \\'q\\'', 'h', {'k' => [1, 2.5e3, undef]}, 'n', -3);\n"
           "@x = ('1','2');\n@y = ('3','4');\n[record]\n1;\n")
    stmts = parse_statements(src, "t.prj")
    assert stmts[0][1] == ["label", "a 'q'", "h", {"k": [1, 2500.0, None]}, "n", -3]
    assert stmts[-1][0] == "[record]"
    for hostile in ("@args = (system('rm -rf /'));", "@x = (`id`);", "@x = ('1', $ENV{HOME});",
                    "@x = ('1', 2"):
        with pytest.raises(CorruptFile, match=r"t\.prj: line \d+"):
            parse_statements(hostile, "t.prj")
    p = tmp_path / "plain.prj"  # Athena can also write uncompressed projects
    p.write_text(src)
    r = ALL["xafs-athena"].translate([p])
    assert r.variable[0]["group_label"] == "a 'q'" and list(r.tables[0].columns.values())[0][1] == 2.0


def test_athena_gzip_bomb_and_truncation(tmp_path, monkeypatch):
    import translators.xafs.athena as athena
    monkeypatch.setattr(athena, "MAX_UNPACKED", 1000)
    bomb = tmp_path / "bomb.prj"
    bomb.write_bytes(gzip.compress(b"# Athena project file\n" + b" " * 100_000))
    with pytest.raises(CorruptFile, match=r"bomb\.prj: decompresses to more than 1000 bytes"):
        ALL["xafs-athena"].translate([bomb])
    monkeypatch.undo()
    whole = gzip.compress(b"# Athena project file\n@x = ('1');\n" * 50)
    cut = tmp_path / "cut.prj"
    cut.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(CorruptFile, match=r"cut\.prj"):
        ALL["xafs-athena"].translate([cut])


# ---- NeXus --------------------------------------------------------------------------------------

def test_nexus_aps_nxsas(samples_dir):
    r = run(ALL["nexus"], samples_dir, "nexus_hdf5/AgBehenate_228.hdf5")
    c = r.constant
    assert c["definition"] == "NXsas" and c["facility"] == "APS" and c["beamline"] == "15ID-D"
    assert c["incident_energy"] == pytest.approx(16.9, abs=0.01) and c["wavelength"] == pytest.approx(0.7336, abs=1e-4)
    assert c["sample_name"] == "Glassy carbon C6 fixed" and c["user"] == "Dale Schaefer"
    assert c["proposal"] == "GUP26110" and c["detector_distance"] == 513.8 and c["pixel_size_x"] == 0.172
    assert c["detector_model"] == "Dectris Pilatus 100K" and c["file_time"] == "2011-10-23T14:28:20-06:00"
    assert "start_time" not in c  # the file holds an empty string
    [a] = r.arrays
    assert a.data.shape == (195, 487) and r.preview.image.shape == (195, 487)
    ds = r.original["datasets"]
    assert ds["/entry/instrument/15ID-D metadata/SDD"]["value"] == 513.8
    assert ds["/entry/data/data"]["shape"] == [195, 487] and "value" not in ds["/entry/data/data"]


def test_nexus_dls_nxmx_external_links_not_followed(samples_dir):
    r = run(ALL["nexus"], samples_dir, "nexus_hdf5/538039.nxs")
    c = r.constant
    assert c["definition"] == "NXmx" and c["facility"] == "DLS" and c["beamline"] == "i16"
    assert c["incident_energy"] == pytest.approx(5.223, abs=1e-3) and c["ring_energy"] == 3.0009
    assert c["wavelength"] == pytest.approx(2.3738, abs=1e-4)  # 0.23738 nm
    assert "/entry1/instrument/pil100k/data" in c["skipped_links"]
    assert any("external link" in w and "not followed" in w for w in r.warnings)
    scan = next(t for t in r.tables if t.name == "entry1_roi1")
    assert list(scan.columns)[0] == "eta" and len(scan.columns["roi1_sum"]) == 61


def test_nexus_sls_stxm(samples_dir):
    r = run(ALL["nexus"], samples_dir, "nexus_hdf5/Focus_2021-03-16_051.hdf5")  # 32 KiB user block
    c = r.constant
    assert c["definition"] == "NXstxm" and c["facility"] == "Swiss Light Source"
    assert c["incident_energy"] == pytest.approx(0.715, abs=1e-3)  # 715.0088 eV
    assert c["start_time"] == "2021-03-16T12:42:07+01:00" and c["end_time"] == "2021-03-16T12:42:22+01:00"
    assert c["ring_current"] == pytest.approx(400.6, abs=0.1) and c["nexus_version"] == "4.4.3"
    assert r.arrays[0].data.shape == (25, 25)


def test_nexus_hostile_links_virtual_and_units(tmp_path):
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as s:
        s["data"] = np.arange(10.0)
    p = tmp_path / "hostile.nxs"
    with h5py.File(p, "w") as f:
        e = f.create_group("entry")
        e.attrs["NX_class"] = "NXentry"
        e["title"] = "hostile"
        mono = e.create_group("instrument/monochromator")
        e["instrument"].attrs["NX_class"] = "NXinstrument"
        mono.attrs["NX_class"] = "NXmonochromator"
        mono["energy"] = 8048.0
        mono["energy"].attrs["units"] = "eV"
        e["ext"] = h5py.ExternalLink(str(secret), "/data")
        e["loop"] = h5py.SoftLink("/entry")
        layout = h5py.VirtualLayout(shape=(10,), dtype="f8")
        layout[:] = h5py.VirtualSource(str(secret), "data", shape=(10,))
        d = e.create_group("data")
        d.attrs["NX_class"] = "NXdata"
        d.attrs["signal"] = "vds"
        d.create_virtual_dataset("vds", layout)
        d["x"] = np.arange(10.0)
    secret.unlink()  # any attempt to follow would now fail loudly; none is made
    r = ALL["nexus"].translate([p])
    assert r.constant["incident_energy"] == 8.048 and r.constant["wavelength"] == pytest.approx(1.5406, abs=1e-4)
    assert any("virtual dataset" in w for w in r.warnings) and any("/entry/ext" in w for w in r.warnings)
    assert r.original["links"]["/entry/loop"] == "soft link to /entry"
    assert r.original["datasets"]["/entry/data/vds"]["not_read"] is True
    assert not r.arrays


def test_nexus_truncated_is_corrupt(samples_dir, tmp_path):
    src = (samples_dir / "nexus_hdf5/AgBehenate_228.hdf5").read_bytes()
    p = tmp_path / "cut.hdf5"
    p.write_bytes(src[:len(src) // 3])
    with pytest.raises(CorruptFile, match=r"cut\.hdf5"):
        ALL["nexus"].translate([p])


# ---- truncated / damaged input ------------------------------------------------------------------

@pytest.mark.parametrize("name,rel", [("xafs-9809", "xafs/PF9A_2022.dat"), ("xafs-athena", "xafs/fe_athena.prj")])
def test_truncated_files_raise_corrupt_naming_the_file(name, rel, samples_dir, tmp_path):
    assert_cuts_are_corrupt(ALL[name], samples_dir / rel, tmp_path)


@pytest.mark.parametrize("name,rel", [(n, r) for n, rs in OWN.items() for r in rs])
def test_damaged_files_fail_cleanly(name, rel, samples_dir, tmp_path):
    for paths in damaged_copies([samples_dir / rel], tmp_path, seed=99, rounds=5):
        try:
            ALL[name].translate(paths)
        except TranslatorError:
            pass


# ---- through the framework writer ---------------------------------------------------------------

@pytest.mark.parametrize("name,rel", [(n, r) for n, rs in OWN.items() for r in rs[:2]])
def test_written_package_passes_rde_validate(name, rel, samples_dir, tmp_path, rde_validate):
    result, _ = write_checked(ALL[name], [samples_dir / rel], tmp_path)
    assert list((tmp_path / "thumbnail").glob("*.png"))
    if result.arrays:
        [h5] = list((tmp_path / "structured").glob("*.h5"))
        with h5py.File(h5, "r") as f:
            assert any(ds.compression == "gzip" for ds in f.values() if isinstance(ds, h5py.Dataset)) or \
                any(getattr(f[k], "compression", None) == "gzip" for k in f)
    assert_rde_valid(rde_validate, tmp_path)
