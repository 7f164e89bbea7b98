"""EDAX TEAM/Genesis ``.spc`` EDS spectra (binary).

Only the fields whose place in the 3840-byte header was confirmed against an EMSA export of
the same acquisition are decoded (date, channel count, eV per channel, live time, tilt,
take-off and elevation angles, resolution, beam energy); the rest of the header is kept as a
hex dump in ``original_metadata.json``. Counts are int32 from ``dataStart`` (usually 3840).
"""
from __future__ import annotations

import struct
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators import progress
from translators.common import best_score, require_file
from translators.contract import CorruptFile, Preview, Table, TranslationResult, load_vocabulary
from translators.safeio import read_bytes, read_head

HEADER = 3840
_FIELDS = {  # vocabulary key -> (offset, struct format)
    "file_version": (0, "<f"), "number_of_channels": (32, "<h"), "energy_per_channel": (384, "<i"),
    "live_time": (456, "<f"), "tilt_angle": (460, "<f"), "takeoff_angle": (464, "<f"),
    "resolution_mnka": (472, "<f"), "elevation_angle": (512, "<f"), "beam_energy": (532, "<f"),
}


def _is_spc(p: Path) -> bool:
    head = read_head(p, 40)
    if len(head) < 40 or p.suffix.lower() != ".spc":
        return False
    (ver,) = struct.unpack_from("<f", head, 0)
    (start,) = struct.unpack_from("<i", head, 28)
    (npts,) = struct.unpack_from("<h", head, 32)
    return 0.0 < ver < 100.0 and start == HEADER and 0 < npts <= 1 << 15


class EdaxSpcTranslator:
    name = "edax-spc"
    version = "1.0.0"
    description = "EDAX TEAM/Genesis .spc EDS spectra (binary)"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        return best_score(paths, lambda p: 0.9 if _is_spc(p) else 0.0)

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        path = require_file(paths, _is_spc, "no EDAX .spc file (float version, data start 3840)")
        data = read_bytes(path, 64 << 20)
        if len(data) < HEADER:
            raise CorruptFile(f"{path.name}: {len(data)} bytes is shorter than the {HEADER}-byte .spc header")
        warnings: list[str] = []
        const: dict[str, Any] = {}
        original: dict[str, Any] = {}
        for key, (off, fmt) in _FIELDS.items():
            (v,) = struct.unpack_from(fmt, data, off)
            original[f"@{off}"] = v
            if isinstance(v, float) and not np.isfinite(v):
                warnings.append(f"{path.name}: {key} at byte {off} is not a finite number; left out")
                continue
            const[key] = round(v, 6) if isinstance(v, float) else v
        year, day, month, minute, hour, _hund, sec = struct.unpack_from("<Hbbbbbb", data, 8)
        original["@8 date"] = [year, month, day, hour, minute, sec]
        try:
            const["acquisition_date"] = datetime(year, month, day, hour, minute, sec).isoformat()
        except ValueError:
            warnings.append(f"{path.name}: the header date {year}-{month}-{day} {hour}:{minute}:{sec} is not "
                            "a calendar date; kept verbatim in original_metadata.json")
        original["header_hex"] = data[:HEADER].rstrip(b"\0").hex()
        progress.header_read(original, const)
        n = int(const.get("number_of_channels") or 0)
        avail = (len(data) - HEADER) // 4
        if n > avail:
            warnings.append(f"{path.name}: header says {n} channels, the file holds {avail} (truncated)")
            n = avail
        counts = np.frombuffer(data, "<i4", n, HEADER).astype(float)
        const["total_counts"] = int(counts.sum())
        ev = float(const.get("energy_per_channel") or 10)
        energy = ev * np.arange(n)
        return TranslationResult(
            constant=const, original=original, warnings=warnings, stem=path.stem,
            used_keys=[k for k in original if k != "header_hex"],
            tables=[Table(path.stem, {"energy": energy, "counts": counts}, {"energy": "eV", "counts": "counts"})],
            preview=Preview(x=energy, y=counts, x_label="energy (eV)", y_label="counts", title=path.stem) if n > 1 else None)
