"""Cathodoluminescence terms of the DM translator (grating, PMT voltage, wavelengths).

No real CL file was available: the DM3 file is written here by a minimal DM3 writer, with the tag
paths rosettasciio's DigitalMicrograph reader maps for Gatan CL signals (docs/translators.md)."""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from translators import progress
from translators.gatan_dm import GatanDMTranslator
from translators.writer import write_outputs

_F8, _I4, _U2, _ARRAY, _F4 = 7, 3, 4, 20, 6


def _data(name: str, value: Any) -> bytes:
    head = b"\x15" + struct.pack(">H", len(name)) + name.encode() + b"%%%%"
    if isinstance(value, str):  # DM text: a little-endian u16 array
        raw = value.encode("utf-16-le")
        return head + struct.pack(">IIII", 3, _ARRAY, _U2, len(raw) // 2) + raw
    if isinstance(value, np.ndarray):
        return head + struct.pack(">IIII", 3, _ARRAY, _F4, value.size) + value.astype("<f4").tobytes()
    if isinstance(value, int):
        return head + struct.pack(">II", 1, _I4) + struct.pack("<i", value)
    return head + struct.pack(">II", 1, _F8) + struct.pack("<d", float(value))


def _group(name: str, children: dict[str, Any]) -> bytes:
    body = b"".join(_group(k, v) if isinstance(v, dict) else _data(k, v) for k, v in children.items())
    return b"\x14" + struct.pack(">H", len(name)) + name.encode() + b"\x00\x01" + \
        struct.pack(">I", len(children)) + body


def write_dm3(path: Path, tree: dict[str, Any]) -> None:
    root = b"\x00\x01" + struct.pack(">I", len(tree)) + b"".join(
        _group(k, v) if isinstance(v, dict) else _data(k, v) for k, v in tree.items())
    body = root + b"\x00" * 8
    path.write_bytes(struct.pack(">III", 3, len(body) + 4, 1) + body)


def test_cl_grating_pmt_voltage_and_wavelengths(tmp_path: Path) -> None:
    spectrum = np.linspace(0.0, 99.0, 100, dtype=np.float32)
    tags = {"CL": {"Acquisition": {"Dispersion grating (lines/mm)": 1200.0, "Central wavelength (nm)": 550.0,
                                   "Exposure (s)": 0.5, "Number of frames": 3}},
            "Acquisition": {"Monarc Spectrometer": {"Grating": "1200 l/mm, 500 nm blaze", "PMT HV": 950.0}},
            "Meta Data": {"Signal": "CL", "Format": "Spectrum"}}
    image = {"ImageData": {"Data": spectrum, "DataType": 2, "Dimensions": {"": 100},
                           "Calibrations": {"Dimension": {"": {"Scale": 0.5, "Origin": 0.0, "Units": "nm"}}}},
             "ImageTags": tags, "Name": "CL spectrum"}
    f = tmp_path / "cl_spectrum.dm3"
    write_dm3(f, {"ImageList": {"": image}})
    t = GatanDMTranslator()
    assert t.sniff([f]) >= 0.9
    result, error = progress.translate(t, [f])
    assert error is None, error
    out = tmp_path / "out"
    rep = write_outputs(result, t.vocabulary(), [f], out, translator=t.name, version=t.version)
    assert rep["status"] == "ok", rep["warnings"]
    row = json.loads((out / "meta" / "metadata.json").read_text(encoding="utf-8"))["variable"][0]
    assert row["grating_groove_density"] == {"value": 1200.0, "unit": "lines/mm"}
    assert row["grating"] == {"value": "1200 l/mm, 500 nm blaze"}
    assert row["pmt_voltage"] == {"value": 950.0, "unit": "V"}
    assert row["central_wavelength"] == {"value": 550.0, "unit": "nm"}
    assert row["exposure_time"] == {"value": 0.5, "unit": "s"} and row["number_of_frames"]["value"] == 3
    unmapped = " ".join(rep["unmapped_vendor_keys"])
    assert "PMT HV" not in unmapped and "Dispersion grating" not in unmapped


def test_hyperspy_spelling_of_the_cl_tags_is_read_too(tmp_path: Path) -> None:
    image = {"ImageData": {"Data": np.zeros(4, dtype=np.float32), "DataType": 2, "Dimensions": {"": 4}},
             "ImageTags": {"Acquisition": {"Monarc_Spectrometer": {"PMT_HV": 700.0}}}, "Name": "PMT image"}
    f = tmp_path / "pmt.dm3"
    write_dm3(f, {"ImageList": {"": image}})
    result, error = progress.translate(GatanDMTranslator(), [f])
    assert error is None and result.variable[0]["pmt_voltage"] == 700.0
