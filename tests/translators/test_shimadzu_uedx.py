"""Shimadzu µEDX XRF mapping text through the generic-text mapping built from the seeds'
documentation. No real file was available: the file here is constructed from that description
(block structure [FileInfo]/[ResMap_Common]/[ResMap_Element] with [NetCounts] and [Conc] grids,
the documented keys), in the code page a Japanese instrument PC writes (cp932, CRLF)."""
from __future__ import annotations

import json
from pathlib import Path

from _helpers import assert_rde_valid
from translators.pipeline import translate_into

GRID = [[100 + 10 * x + y for x in range(5)] for y in range(4)]


def _constructed(path: Path, *, separator: str = "=") -> Path:
    rows = "\n".join("\t".join(str(v) for v in row) for row in GRID)
    conc = "\n".join("\t".join(f"{10 + x + y / 10:.2f}" for x in range(5)) for y in range(4))
    keys = [("[FileInfo]", None), ("SampleName", "ZnO-SnO2 gradient #12"), ("AnalType", "Mapping"),
            ("Comment", "スパッタ膜"), ("ParFLN", "RCFM-nano"), ("MeasDateStr", "2020/09/14 10:21:33"),
            ("Operator", "渡田"), ("", None), ("[ResMap_Common]", None), ("StartX", "-10.0"), ("StartY", "-8.0"),
            ("EndX", "10.0"), ("EndY", "4.0"), ("PosZ", "0.0"), ("PointX", "5"), ("PointY", "4"), ("Step", "5"),
            ("", None), ("[ResMap_Element]", None), ("CompName", "ZnO-SnO2"), ("ProcType", "FP"),
            ("Elem", "Zn"), ("Line", "Ka")]
    head = "\n".join(k if v is None else f"{k}{separator}{v}" for k, v in keys)
    text = f"{head}\n[NetCounts]\n{rows}\n[Conc]\n{conc}\n"
    path.write_bytes(text.replace("\n", "\r\n").encode("cp932"))
    return path


def test_uedx_mapping_file_translates_with_units(tmp_path: Path, rde_validate: Path) -> None:
    raw = _constructed(tmp_path / "uedx_map.txt")
    data = tmp_path / "pkg" / "data"
    out = translate_into([raw], data, timeout_s=60)
    assert out.status == "ok", out.report
    assert out.translator == "generic-text"
    rep = json.loads((data / "labedge" / "translation_report.json").read_text())
    assert rep["encodings"] == {"uedx_map.txt": "cp932"}
    c = json.loads((data / "meta" / "metadata.json").read_text())["constant"]
    assert c["mapping_name"]["value"] == "shimadzu-uedx-map"
    assert c["sample_name"]["value"] == "ZnO-SnO2 gradient #12" and c["operator"]["value"] == "渡田"
    assert c["comment"]["value"] == "スパッタ膜" and c["measured_at"]["value"] == "2020-09-14T10:21:33"
    assert c["start_x"] == {"value": -10.0, "unit": "mm"} and c["end_y"] == {"value": 4.0, "unit": "mm"}
    assert c["points_x"]["value"] == 5 and c["points_y"]["value"] == 4
    assert c["element"]["value"] == "Zn" and c["xray_line"]["value"] == "Ka"
    lines = (data / "structured" / "uedx_map.csv").read_text().splitlines()
    assert lines[0] == "x1,x2,x3,x4,x5"  # the NetCounts grid only; the [Conc] block is not mixed in
    assert [list(map(float, ln.split(","))) for ln in lines[1:]] == [[float(v) for v in r] for r in GRID]
    vocab = json.loads((data / "tasksupport" / "metadata-def.json").read_text())
    assert vocab["start_x"]["name"] == {"ja": "開始位置 X 座標", "en": "Start position X (StartX)"}
    assert_rde_valid(rde_validate, data)


def test_uedx_without_its_netcounts_block_keeps_the_header_and_says_what_is_missing(tmp_path: Path) -> None:
    raw = _constructed(tmp_path / "uedx_colon.txt", separator=": ")
    text = raw.read_bytes().decode("cp932").replace("[NetCounts]", "[Counts]")
    raw.write_bytes(text.encode("cp932"))
    out = translate_into([raw], tmp_path / "d", timeout_s=60)
    assert out.status == "partial" and "'[NetCounts]'" in out.error and "uedx_colon.txt" in out.error
    c = json.loads((tmp_path / "d" / "meta" / "metadata.json").read_text())["constant"]
    assert c["sample_name"]["value"] == "ZnO-SnO2 gradient #12" and c["start_x"] == {"value": -10.0, "unit": "mm"}
