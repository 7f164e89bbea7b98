"""Surface-spectroscopy translators (VAMAS, PHI .spe, Scienta SES .txt, SPECS .xy/.xml, JEOL AES).

Values asserted here were read off the vendor files by hand (and SOURCES.md), not from our output.
"""
from __future__ import annotations

import json
import sys
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest

from translators.contract import CorruptFile, TranslationResult, Translator, TranslatorError
from translators.jeol_aes import JeolAesTranslator
from translators.phi_spe import PhiSpeTranslator
from translators.scienta_txt import ScientaTxtTranslator
from translators.specs import SpecsXmlTranslator, SpecsXyTranslator
from translators.vamas import VamasTranslator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _helpers import assert_cuts_are_corrupt, assert_rde_valid, damaged_copies, write_checked  # noqa: E402
from testpaths import all_sample_files  # noqa: E402

ALL = {"vamas": VamasTranslator(), "phi-spe": PhiSpeTranslator(), "scienta-txt": ScientaTxtTranslator(),
       "specs-xy": SpecsXyTranslator(), "specs-xml": SpecsXmlTranslator(), "jeol-aes": JeolAesTranslator()}
AES = "xps_aes_other/data036.A"
OWN = {
    "vamas": [["vamas/regular.vms"], ["vamas/irregular.vms"], ["vamas/mjr9_59c.vms"]],
    "phi-spe": [["xps_aes_other/XPS_PHI_QUANTERA_survey.spe"], ["xps_aes_other/SnO2_10nm.spe"],
                ["xps_aes_other/Au_foil2.spe"]],
    "scienta-txt": [["xps_aes_other/Ag_0001.txt"]],
    "specs-xy": [["xps_aes_other/MgFe2O4_small.xy"]],
    "specs-xml": [["xps_aes_other/In-situ_PBTTT_XPS_SPECS.xml"]],
    "jeol-aes": [[f"{AES}/para", f"{AES}/id", f"{AES}/data"]],
}
SNIFF_OWN = {n: {f for group in g for f in group if not f.endswith("/data")} for n, g in OWN.items()}


def run(t, samples: Path, *rel: str) -> TranslationResult:
    return t.translate([samples / r for r in rel])


def check_keys(t, r: TranslationResult) -> None:
    vocab = t.vocabulary()
    for key, value in r.constant.items():
        assert key in vocab and not vocab[key].get("variable"), key
        assert isinstance(value, (str, int, float)) and not isinstance(value, bool), (key, value)
    for row in r.variable:
        for key, value in row.items():
            assert key in vocab and vocab[key].get("variable") == 1, key
            assert isinstance(value, (str, int, float)), (key, value)
    json.dumps(r.original, allow_nan=False, default=str)


# ---- contract, vocabulary, registration -----------------------------------------------------

@pytest.mark.parametrize("name", sorted(ALL))
def test_vocabulary_is_valid_rde_metadata_def(name, rde_validate):
    t = ALL[name]
    assert isinstance(t, Translator)
    vocab = t.vocabulary()
    for key, term in vocab.items():
        assert key == key.lower() and " " not in key and key.isascii(), key
        assert term["name"]["ja"] and term["name"]["en"] and term["originalName"], key
        assert term["schema"]["type"] in ("string", "number", "integer"), key
        assert term.get("variable", 1) == 1
    assert sorted(v["order"] for v in vocab.values()) == list(range(1, len(vocab) + 1))
    path = Path(sys.modules[type(t).__module__].__file__).with_name("metadata-def.json")
    assert_rde_valid(rde_validate, path)


def test_translators_are_registered_as_entry_points():
    eps = {ep.name: ep for ep in entry_points(group="labedge.translators")}
    for name, t in ALL.items():
        assert name in eps and eps[name].load() is type(t)
        assert t.name == name


@pytest.mark.parametrize("name,rels", [(n, g) for n, gs in OWN.items() for g in gs])
def test_every_value_is_in_the_vocabulary(name, rels, samples_dir):
    t = ALL[name]
    r = run(t, samples_dir, *rels)
    assert r.constant and r.tables and r.preview is not None
    check_keys(t, r)
    for table in r.tables:
        lengths = {len(v) for v in table.columns.values()}
        assert len(lengths) == 1 and lengths.pop() > 1, table.name
        assert set(table.units) == set(table.columns)


# ---- sniff ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(ALL))
def test_sniff_own_high_others_zero(name, samples_dir):
    t = ALL[name]
    own = SNIFF_OWN[name]
    for f in all_sample_files():
        rel = f.relative_to(samples_dir).as_posix()
        score = t.sniff([f])
        if rel in own:
            assert score >= 0.8, (rel, score)
        else:
            assert score <= 0.05, (rel, score)


@pytest.mark.parametrize("name", sorted(ALL))
def test_sniff_never_raises(name, tmp_path):
    t = ALL[name]
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 4)
    cases = [[empty], [junk], [tmp_path / "missing.vms"], [tmp_path], []]
    for paths in cases:
        assert t.sniff(paths) == 0.0


# ---- VAMAS ------------------------------------------------------------------------------------

def test_vamas_regular(samples_dir):
    r = run(ALL["vamas"], samples_dir, "vamas/regular.vms")
    assert r.constant["number_of_blocks"] == 1 and r.constant["experiment_mode"].endswith("(NORM)")
    [b] = r.variable
    assert b["pass_energy"] == 100.0 and b["source_energy"] == 1486.61
    assert b["excitation_source"] == "Al Kα" and b["analyser_mode"].endswith("(FAT)")
    assert b["work_function"] == 4.1082 and b["dwell_time"] == 0.1 and b["number_of_scans"] == 1
    assert b["number_of_points"] == 1351 and b["abscissa_start"] == 136.61 and b["abscissa_step"] == 1.0
    assert b["measured_at"] == "2023-08-24T14:19:47+00:00" and b["species"] == "Survey"
    assert b["analyser_lens"] == "LargeArea:1.5kV" and b["source_incidence_angle"] == 54.5
    [t] = r.tables
    assert t.units["kinetic energy"] == "eV" and t.units["counts"] is None
    # after the count 2702 come min/max of both variables, then the interleaved values
    assert t.columns["counts"][0] == 1559.87 and t.columns["Transmission"][0] == 78.8103
    assert t.columns["binding energy"][0] == pytest.approx(1350.0)  # hν − KE
    assert t.columns["kinetic energy"][-1] == pytest.approx(1486.61)


def test_vamas_irregular_reads_explicit_abscissa(samples_dir):
    r = run(ALL["vamas"], samples_dir, "vamas/irregular.vms")
    [b] = r.variable
    assert r.constant["scan_mode"].endswith("(IRREGULAR)")
    assert b["number_of_points"] == 1351 and b["abscissa_label"] == "Kinetic Energy"
    assert "pass_energy" not in b  # 1E+37 is ISO 14976's "no value"
    [t] = r.tables
    assert list(t.columns)[:3] == ["binding energy", "Kinetic Energy", "Intensity"]
    assert t.columns["Kinetic Energy"][0] == 136.61 and t.columns["Intensity"][0] == 15598.7
    assert t.columns["transmission"][0] == pytest.approx(78.8103)


def test_vamas_kratos_map_with_experimental_variable(samples_dir):
    r = run(ALL["vamas"], samples_dir, "vamas/mjr9_59c.vms")
    c = r.constant
    # The header declares 6 spectral regions and 9 blocks (two narrow sets were re-measured).
    assert c["number_of_spectral_regions"] == 6 and c["number_of_blocks"] == 9 and len(r.variable) == 9
    assert c["experimental_variable"] == "Etch Time [s]" and c["instrument_model"] == "Kratos Axis"
    first = r.variable[0]
    assert first["pass_energy"] == 160.0 and first["source_energy"] == 1486.69 and first["source_strength"] == 150.0
    assert first["excitation_source"] == "Al Kα (monochromated)" and first["analyser_lens"] == "Hybrid"
    assert first["map_x"] == 16384 and first["field_of_view_x"] == 6000.0 and first["number_of_scans"] == 3
    assert first["number_of_points"] == 1101 and first["charge_neutraliser"] == "On"
    assert [v["species"] for v in r.variable[2:6]] == ["O", "N", "C", "S"]
    assert r.variable[2]["transition"] == "1s" and r.variable[2]["pass_energy"] == 10.0
    assert len(r.tables) == 9 and r.tables[2].name == "block003_O_1s"


def _vamas(mode="SDP", tech="AES diff", inclusion=(), nblocks=2, nvals=None) -> str:
    """A small ISO 14976 file built from the standard's grammar (not from our reader)."""
    L = ["VAMAS Surface Chemical Analysis Standard Data Transfer Format 1988 May 4",
         "Inst", "Model X", "Op", "Exp", "1", "file comment", mode, "REGULAR"]
    if mode in ("MAP", "MAPDP", "NORM", "SDP"):
        L.append("1")
    # exp. variable; inclusion list; 0 manual items; 1 future experiment entry, 5 per block
    L += ["1", "Sputter Time", "s", str(len(inclusion)), *map(str, inclusion), "0", "1", "5", "fx"]
    L.append(str(nblocks))
    dp = mode in ("MAPDP", "MAPSVDP", "SDP", "SDPSV")
    for b in range(nblocks):
        full = b == 0 or not inclusion
        inc = (lambda p: True) if full else (lambda p: p in inclusion)
        L += [f"blk{b}", "sampleA"]
        for param, value in zip(range(1, 8), ("2024", "2", "3", "4", "5", "6", "9")):
            if inc(param):  # year..GMT offset are parameters 1..7, each on its own
                L.append(value)
        if inc(8):
            L += ["1", "block comment"]
        if inc(9):
            L.append(tech)
        if inc(11):
            L.append(str(30 * b))
        if inc(12):
            L.append("electron gun")
        if inc(13) and dp:
            L += ["18", "1", "+1"]  # depth profile: sputtering ion Ar+
        if inc(14):
            L += ["10000", "1E+37", "1", "1"]
        if inc(19):
            L += ["30", "0", "FRR", "4"] + (["2"] if tech == "AES diff" else [])
            L += ["1", "4.5", "0", "10", "10", "0", "0", "Cu", "LMM", "-1"]
        if inc(31):
            L += ["kinetic energy", "eV", str(900 + b), "0.5"]
        if inc(32):
            L += ["1", "counts", "d"]
        if inc(33):
            L.append("pulse counting")
        if inc(34):
            L += ["0.05", "3", "0"]
        if inc(37) and dp and tech in ("AES diff", "XPS"):
            L += ["3", "1", "100", "100", "45", "0", "continuous"]
        if inc(38):
            L += ["0", "0", "0", "1", "depth", "nm", "2.5"]
        L += ["fue"] * 5
        n = nvals if nvals is not None else 4
        L += [str(n), "1", "9"] + [str(v) for v in range(1, 5)]
    L.append("end of experiment")
    return "\n".join(L) + "\n"


def test_vamas_sdp_aes_diff_inclusion_list_and_future_entries(tmp_path):
    # Later blocks carry only parameters 1, 11, 31, 33 (date, exp. variable, abscissa, signal);
    # the rest repeat the first block. Also: 5 future-upgrade block entries, AES diff width,
    # sputter-depth-profile ion and source lines.
    p = tmp_path / "sdp.vms"
    p.write_text(_vamas(inclusion=(1, 11, 31, 33)), encoding="ascii")
    r = ALL["vamas"].translate([p])
    assert [v["experimental_variable_value"] for v in r.variable] == [0.0, 30.0]
    b0, b1 = r.variable
    assert b0["retard_ratio"] == 4.0 and "pass_energy" not in b0
    assert b0["differential_width"] == 2.0 and b0["work_function"] == 4.5
    assert b0["sputter_energy"] == 3.0 and b0["sputter_mode"] == "continuous"
    assert b1["retard_ratio"] == 4.0 and b1["species"] == "Cu" and b1["abscissa_start"] == 901.0
    assert b0["measured_at"] == "2024-02-03T04:05:06+09:00"
    assert r.original["blocks"][0]["additional numerical parameters"] == [["depth", "nm", "2.5"]] or \
        r.original["blocks"][0]["additional numerical parameters"] == [("depth", "nm", "2.5")]
    assert [list(t.columns["counts"]) for t in r.tables] == [[1, 2, 3, 4]] * 2


def test_vamas_declared_count_beyond_file_is_corrupt(tmp_path):
    p = tmp_path / "huge.vms"
    p.write_text(_vamas(mode="NORM", tech="XPS", nblocks=1, nvals=10**7), encoding="ascii")
    with pytest.raises(CorruptFile, match=r"huge\.vms: line \d+: block 1: declares 10000000"):
        ALL["vamas"].translate([p])


def test_vamas_bad_experiment_mode_names_allowed_values(tmp_path):
    p = tmp_path / "bad.vms"
    p.write_text(_vamas(mode="NORM", tech="XPS").replace("\nNORM\n", "\nNORMAL\n"), encoding="ascii")
    with pytest.raises(CorruptFile, match=r"bad\.vms: line 8: experiment mode 'NORMAL' is not one of MAP"):
        ALL["vamas"].translate([p])


# ---- PHI ----------------------------------------------------------------------------------------

def test_phi_quantera_survey(samples_dir):
    r = run(ALL["phi-spe"], samples_dir, "xps_aes_other/XPS_PHI_QUANTERA_survey.spe")
    c = r.constant
    assert c["instrument_model"] == "PHI Quantera SXM" and c["technique"] == "XPS"
    assert c["excitation_source"] == "Al Kα (monochromated)" and c["source_energy"] == 1486.6
    assert c["xray_power"] == 103.08 and c["xray_beam_diameter"] == 100.0 and c["xray_beam_voltage"] == 20.0
    assert c["work_function"] == 4.25 and c["acquisition_date"] == "2017-06-06"
    assert c["total_acquisition_time"] == 600.0  # "10.0 (min)"
    [v] = r.variable  # NoSpectralReg: 1 (the seven *Full regions are the template)
    assert v["region_name"] == "Su1s" and v["number_of_points"] == 2801 and v["pass_energy"] == 280.0
    assert v["energy_start"] == 1380.0 and v["energy_end"] == -20.0 and v["energy_step"] == 0.5
    assert v["dwell_time"] == 0.251496 and v["intensity_unit"] == "c/s"
    x = r.tables[0].columns["binding energy"]
    assert x[0] == 1380.0 and x[-1] == -20.0 and len(x) == 2801


def test_phi_aes_and_versaprobe(samples_dir):
    aes = run(ALL["phi-spe"], samples_dir, "xps_aes_other/Au_foil2.spe")
    assert aes.constant["ebeam_energy"] == 10.0 and aes.constant["analyser_mode"].endswith("(FRR)")
    assert aes.constant["acquisition_date"] == "2017-05-15"  # written as "117 5 15" (years since 1900)
    [v] = aes.variable
    assert v["energy_scale"] == "kinetic energy" and v["number_of_points"] == 2401 and "pass_energy" not in v
    vp = run(ALL["phi-spe"], samples_dir, "xps_aes_other/SnO2_10nm.spe")
    assert vp.constant["work_function"] == 4.506 and vp.constant["source_analyser_angle"] == 45.0
    assert vp.variable[0]["pass_energy"] == 224.0 and vp.variable[0]["number_of_points"] == 1751


# ---- Scienta, SPECS, JEOL -------------------------------------------------------------------------

def test_scienta_ses_txt(samples_dir):
    r = run(ALL["scienta-txt"], samples_dir, "xps_aes_other/Ag_0001.txt")
    c = r.constant
    assert c["instrument"] == "R3000-6MS014" and c["sample"] == "Ag" and c["software_version"] == "1.3.1"
    assert c["measured_at"] == "2023-03-08T15:24:35"
    [v] = r.variable
    assert v["pass_energy"] == 50.0 and v["excitation_energy"] == 520.0 and v["number_of_sweeps"] == 2
    assert v["lens_mode"] == "Transmission" and v["acquisition_mode"] == "Swept" and v["step_time"] == 203.0
    assert v["number_of_points"] == 361 and v["energy_step"] == 0.05
    x = r.tables[0].columns["Binding Energy"]
    assert x[0] == 382.0 and x[-1] == 364.0 and r.tables[0].units["Binding Energy"] == "eV"


def _ses(slices: int, rows: int = 5) -> str:
    out = ["[Info]", "Number of Regions=0002", "Version=1.3.1", ""]
    for n in (1, 2):
        out += [f"[Region {n}]", f"Region Name=R{n}", "Dimension 1 name=Kinetic Energy [eV]",
                f"Dimension 1 size={rows}", "", f"[Info {n}]", f"Region Name=R{n}", "Pass Energy=20",
                "Excitation Energy=21.2", f"Number of Slices={slices}", "Date=2024-01-02", "Time=3:04:05",
                "", f"[Data {n}]"]
        out += [" ".join([f"{10 + 0.1 * i:.1f}"] + [str(i + j) for j in range(slices)]) for i in range(rows)]
        out.append("")
    return "\n".join(out)


def test_scienta_many_slices_go_to_hdf5_and_truncation_is_corrupt(tmp_path):
    p = tmp_path / "ups.txt"
    p.write_text(_ses(slices=40), encoding="utf-8")
    r = ALL["scienta-txt"].translate([p])
    assert len(r.arrays) == 2 and r.arrays[0].data.shape == (40, 5)
    assert r.tables[0].columns["intensity (sum of slices)"][0] == sum(range(40))
    assert r.variable[1]["region_measured_at"] == "2024-01-02T03:04:05"
    short = tmp_path / "short.txt"
    short.write_text(_ses(slices=1).rsplit("\n", 3)[0], encoding="utf-8")  # drop last rows
    with pytest.raises(CorruptFile, match=r"short\.txt: \[Data 2\] has \d rows but 'Dimension 1 size' is 5"):
        ALL["scienta-txt"].translate([short])


def test_specs_xy(samples_dir):
    r = run(ALL["specs-xy"], samples_dir, "xps_aes_other/MgFe2O4_small.xy")
    assert r.constant["number_of_regions"] == 2 and r.constant["energy_axis"] == "Binding Energy"
    s, fe = r.variable
    assert s["pass_energy"] == 100.0 and s["excitation_energy"] == 1486.61 and s["number_of_points"] == 1351
    assert s["measured_at"] == "2023-08-24T14:19:47+00:00" and s["source"] == "XR 50"
    assert fe["region_name"] == "Fe2p" and fe["pass_energy"] == 20.0 and fe["number_of_points"] == 56
    assert r.tables[0].columns["binding energy"][0] == 1350 and r.tables[0].units["cycle 0 curve 0 scan 0"] == "counts/s"


def test_specs_xml_sums_channels_at_the_right_energy(samples_dir):
    r = run(ALL["specs-xml"], samples_dir, "xps_aes_other/In-situ_PBTTT_XPS_SPECS.xml")
    survey, c1s = r.variable
    assert survey["anode"] == "Mg" and survey["excitation_energy"] == 1253.6 and survey["pass_energy"] == 50.0
    assert survey["number_of_points"] == 1403 and survey["number_of_detectors"] == 5
    assert c1s["region_name"] == "C1s" and c1s["number_of_scans"] == 15 and c1s["energy_step"] == 0.05
    t = r.tables[1]
    y, be = t.columns["counts (sum of channels)"], t.columns["binding energy"]
    assert len(y) == 201 and 283.5 <= be[int(np.argmax(y))] <= 285.5  # C 1s of a polymer


def test_jeol_aes_dataset(samples_dir):
    r = run(ALL["jeol-aes"], samples_dir, f"{AES}/para", f"{AES}/id", f"{AES}/data")
    c = r.constant
    assert c["probe_energy"] == 10.0 and c["probe_current"] == pytest.approx(1.989e-8)
    assert c["measured_at"] == "2016-04-08T19:39:36" and c["operator"] == "Ogiwara"
    assert c["spectrum_kind"] == "ROI (narrow) spectra" and c["magnification"] == 3000.0
    assert [v["roi_name"] for v in r.variable] == ["CuLMM", "AlKLL"]
    assert r.variable[0]["roi_points"] == 3001 and r.variable[1]["roi_sweeps"] == 50
    assert [len(t.columns["counts"]) for t in r.tables] == [3001, 2001]
    assert r.tables[0].columns["counts"][0] == 0x3DE5  # first big-endian int32 in `data`


def test_jeol_aes_data_size_mismatch_is_corrupt(samples_dir, tmp_path):
    d = tmp_path / "x.A"
    d.mkdir()
    for f in ("para", "id"):
        (d / f).write_bytes((samples_dir / AES / f).read_bytes())
    (d / "data").write_bytes((samples_dir / AES / "data").read_bytes()[:-4])
    with pytest.raises(CorruptFile, match=r"x\.A/data: 20004 bytes match neither"):
        ALL["jeol-aes"].translate([d / "para", d / "id", d / "data"])


# ---- truncated / damaged input ------------------------------------------------------------------

@pytest.mark.parametrize("name,rel", [(n, g[0]) for n, gs in OWN.items() for g in gs if n != "jeol-aes"])
def test_truncated_files_raise_corrupt_naming_the_file(name, rel, samples_dir, tmp_path):
    assert_cuts_are_corrupt(ALL[name], samples_dir / rel, tmp_path)


@pytest.mark.parametrize("name,rels", [(n, g) for n, gs in OWN.items() for g in gs])
def test_damaged_files_fail_cleanly(name, rels, samples_dir, tmp_path):
    # Random byte flips: either a translation or a TranslatorError, never another exception.
    for paths in damaged_copies([samples_dir / r for r in rels], tmp_path, seed=1234, rounds=6):
        try:
            ALL[name].translate(paths)
        except TranslatorError:
            pass


# ---- through the framework writer ---------------------------------------------------------------

@pytest.mark.parametrize("name,rels", [(n, gs[2] if n == "vamas" else gs[0]) for n, gs in OWN.items()])
def test_written_package_passes_rde_validate(name, rels, samples_dir, tmp_path, rde_validate):
    result, _ = write_checked(ALL[name], [samples_dir / r for r in rels], tmp_path)
    meta = json.loads((tmp_path / "meta" / "metadata.json").read_text(encoding="utf-8"))
    assert meta["constant"] and len(meta["variable"]) == len(result.variable)
    assert list((tmp_path / "structured").glob("*.csv")) and list((tmp_path / "thumbnail").glob("*.png"))
    assert_rde_valid(rde_validate, tmp_path)
