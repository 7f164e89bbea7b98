"""``labedge rde-export``: RDEFormat ``divided/NNNN/`` tiles, and a zip written as RDE will hold it.

RDE (rdetoolkit's RDEFormatChecker) makes a tile of every path with a four-digit folder and copies
each file flat into its kept folder; the zip must therefore hold one tile per measurement where the
template describes one measurement, and no folder or name RDE would misread."""
from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest

from _helpers import SAMPLES, assert_rde_valid
from facility.rde_export import export_one
from translators import profiles
from translators.pipeline import translate_into

OFFICIAL = SAMPLES.parent / "rde-official"
TEMPLATES = OFFICIAL / "templates"
TEMDM3 = TEMPLATES / "RDE_ELECTRON_MICROSCOPE_STANDARD/templates/template_TemDm3/tasksupport"
RAS_DEF = TEMPLATES / "RDE_XRD/template/rigaku/tasksupport/metadata-def_rigaku_ras.json"
INVOICE = {"datasetId": "", "basic": {"dataName": "x"}, "custom": {}, "sample": {"names": ["試料"]}}


def _package(root: Path, sample: Path, name: str, rel: str | None = None) -> Path:
    data = root / name / "data"
    raw = data / "raw" / (rel or sample.name)
    raw.parent.mkdir(parents=True)
    shutil.copy2(sample, raw)
    assert translate_into([raw], data, timeout_s=60).status in ("ok", "partial")
    (data / "invoice").mkdir()
    (data / "invoice" / "invoice.json").write_text(json.dumps(INVOICE, ensure_ascii=False), encoding="utf-8")
    return data.parent


@pytest.fixture(scope="module")
def multi_signal(tmp_path_factory) -> tuple[Path, Path]:
    if not TEMDM3.is_dir():
        pytest.skip("../shared/rde-official is absent")
    root = tmp_path_factory.mktemp("tiles")
    pkg = _package(root, SAMPLES / "gatan_dm" / "multi_signal.dm3", "pkg-ms")
    res = export_one(pkg, "nims-temdm3", TEMPLATES, root / "out")
    return pkg, Path(res["zip"])


def test_a_multi_signal_dm3_gives_one_tile_per_signal(multi_signal, tmp_path: Path, rde_validate: Path) -> None:
    pkg, zpath = multi_signal
    report = json.loads(zpath.with_name("pkg-ms.export.json").read_text(encoding="utf-8"))
    assert report["tiles"] == 2 and report["divided"] == [{"folder": "divided/0001", "measurement": "1: Plot"}]
    with zipfile.ZipFile(zpath) as z:
        names = set(z.namelist())
        top = json.loads(z.read("meta/metadata.json"))
        tile = json.loads(z.read("divided/0001/meta/metadata.json"))
        z.extractall(tmp_path / "data")
    # tile 0 is the main signal (HAADF, 512 x 512), the one the template describes without tiles
    assert top["constant"]["stem.file_name"]["value"] == "HAADF"
    assert tile["constant"]["stem.file_name"]["value"] == "Plot" and tile["variable"] == []
    assert tile["constant"]["stem.image_data_size"]["value"] == 512 * 4  # the profile: 512 float32 values
    # each tile holds its own data and image; the vendor file, holding both, once in tile 0
    assert {"divided/0001/structured/multi_signal_1_Plot.csv", "divided/0001/main_image/multi_signal_1_Plot.png",
            "nonshared_raw/multi_signal.dm3", "main_image/multi_signal.png"} <= names
    assert "structured/multi_signal_1_Plot.csv" not in names
    assert not any(n.startswith("divided/0001/nonshared_raw/") for n in names)
    # every tile's metadata passes rdetoolkit against the one metadata-def of the dataset
    (tmp_path / "data" / "tasksupport").mkdir()
    shutil.copy2(TEMDM3 / "metadata-def_STEM.json", tmp_path / "data" / "tasksupport" / "metadata-def.json")
    assert_rde_valid(rde_validate, tmp_path / "data")


def test_tile_zero_is_what_the_profile_writes_without_tiles(multi_signal, tmp_path: Path) -> None:
    pkg, zpath = multi_signal
    res = export_one(pkg, "nims-temdm3", TEMPLATES, tmp_path, tiles="file")
    with zipfile.ZipFile(res["zip"]) as one, zipfile.ZipFile(zpath) as tiled:
        assert not any(n.startswith("divided/") for n in one.namelist()) and res["tiles"] == 1
        assert json.loads(one.read("meta/metadata.json")) == json.loads(tiled.read("meta/metadata.json"))


def test_a_template_with_variable_rows_keeps_one_tile_per_file(tmp_path: Path) -> None:
    """VAMAS: the official RDE_XPS program writes one tile with a variable row per block; so do we."""
    if not TEMPLATES.is_dir():
        pytest.skip("../shared/rde-official is absent")
    pkg = _package(tmp_path, SAMPLES / "vamas" / "mjr9_59c.vms", "pkg-vms")
    res = export_one(pkg, "nims-xps-vamas", TEMPLATES, tmp_path / "out")
    with zipfile.ZipFile(res["zip"]) as z:
        assert not any(n.startswith("divided/") for n in z.namelist())
        assert len(json.loads(z.read("meta/metadata.json"))["variable"]) == 9
    assert res["tiles"] == 1


def test_the_zip_holds_no_folder_rde_would_take_for_a_tile_nor_two_files_of_one_name(tmp_path: Path) -> None:
    """A vendor folder named 2024/ would become RDE tile 2024, and RDE copies files flat, so
    structured/XRD_RIGAKU.csv and structured/sub/XRD_RIGAKU.csv would silently become one."""
    if not RAS_DEF.exists():
        pytest.skip("../shared/rde-official is absent")
    pkg = _package(tmp_path, SAMPLES / "rigaku_xrd" / "XRD_RIGAKU.ras", "pkg-ras", rel="2024/XRD_RIGAKU.ras")
    sub = pkg / "data" / "structured" / "sub"
    sub.mkdir()
    (sub / "XRD_RIGAKU.csv").write_text("x,y\n1,2\n", encoding="utf-8")
    res = export_one(pkg, str(RAS_DEF), None, tmp_path / "out")
    with zipfile.ZipFile(res["zip"]) as z:
        names = z.namelist()
        assert not [n for n in names if re.search(r"/\d{4}/", "/" + n)], names
        assert "nonshared_raw/XRD_RIGAKU.ras" in names
        csvs = sorted(n for n in names if n.endswith(".csv"))
        assert csvs == ["structured/XRD_RIGAKU.csv", "structured/sub__XRD_RIGAKU.csv"], csvs
        assert z.read("structured/sub__XRD_RIGAKU.csv") == b"x,y\n1,2\n"
    assert all(n.count("/") == 1 for n in names)  # flat: what the zip shows is what the tile holds
    assert any("written as structured/XRD_RIGAKU.csv" in w or "sub/XRD_RIGAKU.csv" in w for w in res["warnings"])


def test_a_damaged_signal_tree_is_a_named_error_not_a_crash(tmp_path: Path) -> None:
    if not TEMDM3.is_dir():
        pytest.skip("../shared/rde-official is absent")
    pkg = _package(tmp_path, SAMPLES / "gatan_dm" / "multi_signal.dm3", "pkg-bad")
    om = pkg / "data" / "labedge" / "original_metadata.json"
    doc = json.loads(om.read_text(encoding="utf-8"))
    doc["tags"]["ImageList"]["[2]"] = ["not", "a", "tag", "group"]  # a hostile or damaged tree
    om.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(profiles.ProfileError, match="could not"):
        export_one(pkg, "nims-temdm3", TEMPLATES, tmp_path / "out")
