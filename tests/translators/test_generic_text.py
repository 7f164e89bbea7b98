"""Generic text translator: a heavy key-value header + numeric columns, mapped by a TOML/JSON file."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from _helpers import metadata, rde_validate, report
from translators.cli import main as cli_main
from translators.generic_text import GenericTextTranslator
from translators.generic_text.config import ENV_VAR, MappingFileError, load_mapping_file
from translators.pipeline import translate_into

IV = """# Ic-B(T) station export
Instrument: NIMS Ic-B(T) #2
Sample: MgB2-wire-042
Operator: 北本
Date: 2021/03/10 14:22:05
Temperature: 4.2 K
Magnetic field: 5.0 T
Field angle: 90 deg
Criterion: 1 uV/cm
Wire shape: tape

Time[s]\tCurrent[A]\tVoltage[V]
0.0\t0.00\t1.0e-9
0.5\t1.00\t1.2e-9
1.0\t2.00\t1.1e-9
1.5\t3.00\t5.0e-8
"""


@pytest.fixture()
def iv_file(tmp_path: Path) -> Path:
    f = tmp_path / "iv_042.txt"
    f.write_bytes(IV.encode("cp932"))  # the station is a Japanese Windows PC
    return f


def test_iv_file_through_the_pipeline(tmp_path: Path, iv_file: Path) -> None:
    data = tmp_path / "pkg" / "data"
    out = translate_into([iv_file], data)
    assert out.ok and out.translator == "generic-text", out.error
    c = metadata(data)["constant"]
    assert c["temperature"] == {"value": 4.2, "unit": "K"}
    assert c["magnetic_field"] == {"value": 5.0, "unit": "T"}
    assert c["field_angle"] == {"value": 90.0, "unit": "deg"}
    assert c["operator"] == {"value": "北本"} and c["measured_at"] == {"value": "2021-03-10T14:22:05"}
    assert c["data_row_count"] == {"value": 4} and c["mapping_name"] == {"value": "superconductor-iv"}
    rows = (data / "structured" / "iv_042.csv").read_text().splitlines()
    assert rows[0] == "time (s),current (A),voltage (V)" and rows[4] == "1.5,3,5e-08"
    assert "Wire shape" in json.loads((data / "labedge" / "original_metadata.json").read_text())["header"]
    assert report(data)["status"] == "ok"
    rde_validate(data)


def test_truncated_iv_file_keeps_rows_with_warning(tmp_path: Path, iv_file: Path) -> None:
    iv_file.write_bytes(IV.encode("cp932")[:-9])  # cut inside the last row
    res = GenericTextTranslator().translate([iv_file])
    assert res.tables[0].columns["current"].tolist() == [0.0, 1.0, 2.0]
    assert any("not rows of 3 numbers" in w for w in res.warnings)


def test_site_mapping_file_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mapping = tmp_path / "furnace.json"
    mapping.write_text(json.dumps({
        "mapping": {"name": "furnace-log"},
        "match": {"suffixes": [".log"], "header_contains": ["FURNACE LOG"]},
        "header": {"separators": ["="]},
        "terms": [{"key": "setpoint", "original": "SETPOINT", "type": "number", "unit": "degC",
                   "ja": "設定温度", "en": "Set point", "parse": "first_number"}]}))
    f = tmp_path / "run1.log"
    f.write_text("FURNACE LOG v2\nSETPOINT = 850 C\n\nt,T\n0,20\n1,25\n2,30\n")
    assert GenericTextTranslator().sniff([f]) == 0.0
    monkeypatch.setenv(ENV_VAR, str(mapping))
    t = GenericTextTranslator()
    assert t.sniff([f]) == pytest.approx(0.6)
    res = t.translate([f])
    assert res.constant["setpoint"] == 850.0 and res.vocabulary["setpoint"]["unit"] == "degC"
    assert list(res.tables[0].columns) == ["t", "t_"]


def test_bad_mapping_file_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[mapping]\nname = "x"\n[match]\nrequired_keys = ["A"]\n[[terms]]\nkey = "Bad-Key"\n'
                   'original = "A"\nja = "a"\nen = "a"\n')
    with pytest.raises(MappingFileError, match=r"terms\[0\].*Bad-Key.*snake_case"):
        load_mapping_file(bad)
    bad.write_text('[mapping]\nname = "x"\n')
    with pytest.raises(MappingFileError, match="required_keys or header_contains"):
        load_mapping_file(bad)


def test_cli_translate_prints_mapping(tmp_path: Path, iv_file: Path, capsys: pytest.CaptureFixture) -> None:
    rc = cli_main(["translate", str(iv_file), "--out", str(tmp_path / "out")])
    text = capsys.readouterr().out
    assert rc == 0
    assert "iv_042.txt: ok (translator generic-text" in text
    assert "temperature" in text and "4.2 K" in text and "<- Temperature" in text
    assert (tmp_path / "out" / "iv_042.txt" / "data" / "raw" / "iv_042.txt").read_bytes() == iv_file.read_bytes()
    rc = cli_main(["translators", "--json"])
    listed = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed["generic-text"]["loaded"] and listed["rigaku"]["version"] == "1.0.0"
