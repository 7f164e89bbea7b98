"""JEOL JAMP AES depth profiles (data type 5) and the official RDE_AES ``AES-depth`` template.

No real depth set was available: the set is built in tmp_path from the shared narrow set's own
``para``/``id`` (data036.A), declared type 5, with a ``data`` file of several cycles of the ROI
spectra back to back (the layout inferred in translators/jeol_aes; docs/translators.md)."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from _helpers import SAMPLES, assert_rde_valid
from facility.rde_export import check_invoice
from translators import profiles
from translators.pipeline import translate_into

NARROW = SAMPLES / "xps_aes_other" / "data036.A"
TEMPLATES = SAMPLES.parent / "rde-official" / "templates"
DEPTH_DEF = TEMPLATES / "RDE_AES" / "templates" / "AES-depth" / "tasksupport"
CYCLES = 3


def _rois(para: str) -> list[tuple[str, float, float, int]]:
    """(name, start, step, points) per ROI, read from the para text itself."""
    def by_index(tag: str) -> dict[str, str]:
        return dict(re.findall(rf"^\$AP_{tag}\s+(\d+)\s+(\S+)", para, re.M))
    names, start, step, pts = (by_index(t) for t in ("SPC_ROI_NAME", "SPC_ROI_START", "SPC_ROI_STEP",
                                                     "SPC_ROI_POINTS"))
    return [(names[i], float(start[i]), float(step[i]), int(pts[i])) for i in sorted(names, key=int)]


def _depth_set(folder: Path, cycles: int = CYCLES, extra_bytes: int = 0) -> tuple[list[Path], np.ndarray, list]:
    if not NARROW.is_dir():
        pytest.skip(f"{NARROW} is absent")
    folder.mkdir(parents=True)
    paths = []
    for name in ("id", "para"):
        text = (NARROW / name).read_bytes().decode("cp932")
        text = text.replace("$AP_DATATYPE  4", "$AP_DATATYPE  5")
        (folder / name).write_bytes(text.encode("cp932"))
        paths.append(folder / name)
    rois = _rois((folder / "para").read_text(encoding="cp932"))
    per_cycle = sum(r[3] for r in rois)
    rng = np.random.default_rng(14)
    counts = rng.integers(0, 50_000, size=(cycles, per_cycle), dtype=np.int64)
    (folder / "data").write_bytes(counts.astype(">i4").tobytes() + b"\0" * extra_bytes)
    paths.append(folder / "data")
    return paths, counts, rois


def _csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_depth_set_decodes_every_cycle_of_every_roi(tmp_path: Path) -> None:
    raw, counts, rois = _depth_set(tmp_path / "depth.A")
    data = tmp_path / "out"
    assert translate_into(raw, data, timeout_s=60).status == "partial"  # the inferred layout is a warning
    report = json.loads((data / "labedge" / "translation_report.json").read_text(encoding="utf-8"))
    assert any("inferred" in w and f"{CYCLES} cycle" in w for w in report["warnings"])
    meta = json.loads((data / "meta" / "metadata.json").read_text(encoding="utf-8"))
    assert meta["constant"]["number_of_cycles"]["value"] == CYCLES
    assert meta["constant"]["data_type"]["value"] == 5
    assert [r["roi_name"]["value"] for r in meta["variable"]] == [r[0] for r in rois] == ["CuLMM", "AlKLL"]
    off = 0
    for i, (name, start, step, n) in enumerate(rois, start=1):
        rows = _csv(data / "structured" / f"spectrum{i:02d}_{name}.csv")
        assert rows[0] == ["kinetic energy (eV)"] + [f"cycle {c} (counts)" for c in range(1, CYCLES + 1)]
        assert len(rows) == n + 1
        assert float(rows[1][0]) == start and float(rows[-1][0]) == pytest.approx(start + step * (n - 1))
        for c in range(CYCLES):
            assert [float(r[c + 1]) for r in rows[1:]] == counts[c, off:off + n].tolist()
        off += n
    profile = _csv(data / "structured" / "depth_profile.csv")
    assert profile[0] == ["cycle", "CuLMM summed counts (counts)", "AlKLL summed counts (counts)"]
    n1 = rois[0][3]
    assert [float(r[1]) for r in profile[1:]] == counts[:, :n1].sum(axis=1).tolist()
    assert [float(r[2]) for r in profile[1:]] == counts[:, n1:].sum(axis=1).tolist()


def test_depth_data_of_a_wrong_size_is_partial_with_the_sizes_named(tmp_path: Path) -> None:
    raw, _, _ = _depth_set(tmp_path / "bad.A", extra_bytes=6)
    data = tmp_path / "out"
    out = translate_into(raw, data, timeout_s=60)
    assert out.status == "partial"
    report = json.loads((data / "labedge" / "translation_report.json").read_text(encoding="utf-8"))
    assert "bytes match neither" in (report["error"] or "")
    meta = json.loads((data / "meta" / "metadata.json").read_text(encoding="utf-8"))
    assert meta["constant"]["probe_energy"]["value"] == 10.0  # the header is kept


def test_depth_set_in_the_official_aes_depth_template(tmp_path: Path, rde_validate: Path) -> None:
    raw, _, rois = _depth_set(tmp_path / "depth.A")
    data = tmp_path / "out"
    assert translate_into(raw, data, timeout_s=60).status == "partial"
    summary = profiles.apply_profile(data, "nims-aes-depth", TEMPLATES)
    assert summary["metadata_def"] == "metadata-def.json"
    meta = json.loads((data / "meta" / "metadata.json").read_text(encoding="utf-8"))
    c = meta["constant"]
    assert c["data_type"] == {"value": "Depth"}
    # the AES-depth template's own default_value.csv, not the survey's
    defaults = dict(csv.reader((DEPTH_DEF / "default_value.csv").open(encoding="utf-8")))
    assert c["measurement.analysis_field"] == {"value": defaults["measurement.analysis_field"]}
    assert c["probe_energy"] == {"value": "10.00", "unit": "keV"}
    assert c["probe_current"] == {"value": "1.989x10^(-8)", "unit": "A"}
    assert [(r["species_label_transitions"]["value"], r["abscissa_start"]["value"]) for r in meta["variable"]] == \
        [(name, f"{start:.2f}") for name, start, _, _ in rois]
    assert_rde_valid(rde_validate, data)
    assert "nims-aes-depth" in profiles.suggest("jeol-aes")


def test_aes_depth_invoice_needs_the_measurement_condition() -> None:
    schema = DEPTH_DEF / "invoice.schema.json"
    if not schema.is_file():
        pytest.skip(f"{schema} is absent")
    invoice = {"basic": {}, "custom": {"measurement_method": "AES depth"},
               "sample": {"generalAttributes": [{"termId": "3adf9874-7bcb-e5f8-99cb-3d6fd9d7b55e"}]}}
    problems = check_invoice(invoice, schema)
    assert any("measurement_condition" in p for p in problems), problems
    invoice["custom"]["measurement_condition"] = "Ar+ 3 kV, 1 min/cycle"
    assert not check_invoice(invoice, schema), check_invoice(invoice, schema)
    # the official schemas' tuple-form "items" (under a 2020-12 $schema) is validated, not a crash
    invoice["sample"]["generalAttributes"][0]["termId"] = "not-the-template-term"
    assert any("generalAttributes/0/termId" in p for p in check_invoice(invoice, schema))
