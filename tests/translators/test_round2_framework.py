"""Robustness as a framework rule (issue 14 §1): partial after the header, encodings detected and
recorded, unparseable values kept verbatim, and report counts that add up."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from _helpers import SAMPLES, all_sample_files, report
from translators import progress
from translators.contract import CorruptFile, TranslationResult
from translators.pipeline import translate_into
from translators.registry import load_registry
from translators.safeio import decode_text
from translators.writer import leaf_keys, write_outputs

VARIANTS = SAMPLES.parent / "samples-variants"
VOCAB = {"voltage": {"name": {"ja": "電圧", "en": "Voltage"}, "schema": {"type": "number"}, "unit": "kV",
                     "originalName": "KV", "order": 1}}


class _StopsAfterHeader:
    name, version, description = "stops", "1", "reads a header, then fails"

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def vocabulary(self):
        return VOCAB

    def translate(self, paths):
        progress.header_read({"KV": "40", "SERIAL": "X1"}, {"voltage": 40.0})
        raise self.exc


@pytest.mark.parametrize("exc", [CorruptFile("x.dat: data block truncated"), IndexError("list index out of range")])
def test_an_exception_after_the_header_gives_partial_with_the_header_kept(tmp_path: Path, exc: Exception) -> None:
    t = _StopsAfterHeader(exc)
    result, error = progress.translate(t, [tmp_path / "x.dat"])
    assert error and str(exc) in error and "stopped after reading the header" in error
    raw = tmp_path / "x.dat"
    raw.write_text("x")
    rep = write_outputs(result, VOCAB, [raw], tmp_path / "out", translator=t.name, version=t.version, error=error)
    assert rep["status"] == "partial" and rep["error"] == error
    meta = json.loads((tmp_path / "out" / "meta" / "metadata.json").read_text())
    assert meta["constant"] == {"voltage": {"value": 40.0, "unit": "kV"}}
    assert json.loads((tmp_path / "out" / "labedge" / "original_metadata.json").read_text()) == {"KV": "40", "SERIAL": "X1"}
    assert rep["counts"]["vendor_keys_mapped"] == 1 and rep["unmapped_vendor_keys"] == ["SERIAL"]


def test_an_exception_before_any_header_still_fails() -> None:
    class Early(_StopsAfterHeader):
        def translate(self, paths):
            raise CorruptFile("x.dat: not this format")
    with pytest.raises(CorruptFile):
        progress.translate(Early(CorruptFile("")), [])


def test_truncated_depth_profile_is_partial_through_the_sandbox(tmp_path: Path) -> None:
    """A real file through the real pipeline: the PHI header reads, the binary part is cut off."""
    src = VARIANTS / "xps_aes_other" / "SnO2_10nm_1.pro"
    if not src.exists():
        pytest.skip("samples-variants absent")
    data = src.read_bytes()
    cut = tmp_path / "spool" / "cut.pro"
    cut.parent.mkdir()
    cut.write_bytes(data[:data.index(b"EOFH") + 200])
    out = translate_into([cut], tmp_path / "pkg" / "data", timeout_s=60)
    rep = report(tmp_path / "pkg" / "data")
    assert out.status == "partial", rep
    assert "stopped after reading the header" in rep["error"] and "cut.pro" in rep["error"]
    meta = json.loads((tmp_path / "pkg" / "data" / "meta" / "metadata.json").read_text())
    assert meta["constant"]["technique"]["value"] == "XPS"
    assert rep["counts"]["vendor_keys_found"] > 100


@pytest.mark.parametrize("raw, encoding, text", [
    ("試料名: 銅".encode("utf-8-sig"), "utf-8-sig", "試料名: 銅"),
    ("Probe: 10 µm".encode("utf-16"), "utf-16", "Probe: 10 µm"),
    ("試料名: 銅 ｱｲｳ".encode("utf-8"), "utf-8", "試料名: 銅 ｱｲｳ"),
    ("試料名: 銅、測定".encode("cp932"), "cp932", "試料名: 銅、測定"),
    ("Température: 25 °C, Größe 10 µm".encode("cp1252"), "cp1252", "Température: 25 °C, Größe 10 µm"),
    ("Opérateur – “réglage”".encode("cp1252"), "cp1252", "Opérateur – “réglage”"),
    ("Operator=渡田\r\nSample=ZnO".encode("cp932"), "cp932", "Operator=渡田\r\nSample=ZnO"),
])
def test_encoding_detection_order(raw: bytes, encoding: str, text: str) -> None:
    got, enc = decode_text(raw)
    assert (got.lstrip("\ufeff"), enc) == (text, encoding)


def test_the_encoding_used_is_in_the_report(tmp_path: Path) -> None:
    src = SAMPLES / "vamas" / "regular.vms"
    lines = src.read_bytes().decode("latin-1").splitlines()
    lines[1] = "東北大学 金属材料研究所"  # institution identifier, as a Japanese lab writes it
    raw = tmp_path / "spool" / "ja.vms"
    raw.parent.mkdir()
    raw.write_bytes("\r\n".join(lines).encode("cp932"))
    out = translate_into([raw], tmp_path / "data", timeout_s=60)
    rep = report(tmp_path / "data")
    assert out.status in ("ok", "partial"), rep
    assert rep["encodings"] == {"ja.vms": "cp932"}
    meta = json.loads((tmp_path / "data" / "meta" / "metadata.json").read_text())
    assert meta["constant"]["institution"]["value"] == "東北大学 金属材料研究所"


def test_an_unparseable_value_is_kept_verbatim_and_the_status_is_partial(tmp_path: Path) -> None:
    raw = tmp_path / "r.txt"
    raw.write_text("x")
    res = TranslationResult(constant={"voltage": "forty kV"}, original={"KV": "forty kV"})
    rep = write_outputs(res, VOCAB, [raw], tmp_path / "o", translator="t", version="1")
    assert rep["status"] == "partial"
    assert rep["unparsed_values"] == [{"key": "voltage", "where": "constant", "originalName": "KV",
                                       "value": "forty kV", "problem": "could not convert string to float: 'forty kV'"}]
    assert any("kept verbatim" in w for w in rep["warnings"])
    assert rep["counts"]["unparsed_values"] == 1


def test_counts_treat_an_array_as_one_key_and_add_up(tmp_path: Path) -> None:
    raw = tmp_path / "r.txt"
    raw.write_text("x")
    original = {"KV": "40", "spectrum": list(range(4096)), "regions": [{"name": "C1s"}, {"name": "O1s"}],
                "repeated": ["first comment", "second comment"]}
    assert sorted(leaf_keys(original)) == ["KV", "regions/0/name", "regions/1/name", "repeated", "spectrum"]
    res = TranslationResult(constant={"voltage": 40}, original=original)
    rep = write_outputs(res, VOCAB, [raw], tmp_path / "o", translator="t", version="1")
    c = rep["counts"]
    assert (c["vendor_keys_found"], c["vendor_keys_kept"], c["vendor_keys_mapped"], c["unmapped_vendor_keys"]) == (5, 5, 1, 4)


def _samples() -> list[Path]:
    files = all_sample_files()
    if VARIANTS.is_dir():
        files += sorted(p for p in VARIANTS.rglob("*") if p.is_file() and p.name != "SOURCES.md")
    return files


def test_report_counts_are_true_for_every_sample(tmp_path: Path) -> None:
    """found = mapped + unmapped, kept = found, and a translator that mapped terms has mapped vendor keys
    (the old report listed every vendor key as unmapped for some translators)."""
    reg = load_registry()
    wrong = {}
    checked = 0
    for i, src in enumerate(_samples()):
        t, _ = reg.choose([src])
        if t is None:
            continue
        try:
            result, error = progress.translate(t, [src])
        except Exception:  # noqa: BLE001 - failures are the fuzz test's business; counts are this one's
            continue
        rep = write_outputs(result, result.vocabulary or t.vocabulary(), [src], tmp_path / str(i),
                            translator=t.name, version=t.version, error=error)
        c = rep["counts"]
        checked += 1
        ok = (c["vendor_keys_found"] == c["vendor_keys_mapped"] + c["unmapped_vendor_keys"]
              and c["vendor_keys_kept"] == c["vendor_keys_found"]
              and (c["mapped_terms"] == 0 or c["vendor_keys_mapped"] > 0))
        if not ok:
            wrong[src.name] = c
    assert checked >= 50
    assert not wrong, wrong


def test_repeated_sidecar_keys_are_all_kept(tmp_path: Path) -> None:
    """JEOL sidecars may repeat a key (a second $CM_COMMENT): every value survives."""
    from translators.jeol_sem import JeolSemTranslator

    src = VARIANTS / "sem_jeol_zeiss" / "jeol_8530F_image000.txt"
    if not src.exists():
        pytest.skip("samples-variants absent")
    txt = tmp_path / "rep.txt"
    txt.write_bytes(src.read_bytes() + b"$CM_COMMENT first note\n$CM_COMMENT second note\n")
    result, error = progress.translate(JeolSemTranslator(), [txt])
    assert error is None
    assert result.original["sidecar_repeated"]["$CM_COMMENT"][-2:] == ["first note", "second note"]


def test_repeated_ras_header_keys_keep_every_value(tmp_path: Path) -> None:
    from translators.rigaku import RigakuTranslator

    text = (SAMPLES / "rigaku_xrd" / "XRD_RIGAKU.ras").read_bytes()
    i = text.index(b"*FILE_COMMENT")
    ras = tmp_path / "rep.ras"
    ras.write_bytes(text[:i] + b'*FILE_COMMENT "second comment"\r\n' + text[i:])
    result, error = progress.translate(RigakuTranslator(), [ras])
    assert error is None
    header = result.original["header"]
    assert header["*FILE_COMMENT"] == "second comment" and header["*FILE_COMMENT#2"] == "XRD example"
