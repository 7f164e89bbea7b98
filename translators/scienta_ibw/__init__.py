"""Scienta Omicron SES spectra saved as Igor binary waves (``.ibw``).

The wave note holds the SES ``[SES]`` key=value block (region, lens mode, pass energy,
excitation energy, sweeps, detector channels, date and time), read by label with the
same vocabulary as the SES text export. The x axis is named by the wave's own dimension
units ("Binding Energy [eV]", "Kinetic Energy [eV]", an angle "[deg]"), never assumed:
a binding-energy wave is not given a kinetic-energy axis because the note's "Energy Unit"
says Kinetic. The wave is read with :mod:`translators.scienta_ibw.igor` (our own reader).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators import progress
from translators.common import best_score, put, require_file, text
from translators.contract import Array, Preview, Table, TranslationResult, load_vocabulary
from translators.safeio import read_bytes, read_head
from translators.scienta_ibw.igor import read_ibw
from translators.scienta_txt import _CONST, _variable

MAX_BYTES = 1 << 30
_LABEL_UNIT = re.compile(r"^(.*?)\s*\[(.*)\]\s*$")


def _is_ses_ibw(p: Path) -> bool:
    head = read_head(p, 1 << 16)
    return head[:2] in (b"\x05\x00", b"\x00\x05", b"\x02\x00", b"\x00\x02") and b"[SES]" in head


def parse_note(note: str) -> dict[str, dict[str, str]]:
    """The wave note as sections of key=value (SES separates lines with CR)."""
    sections: dict[str, dict[str, str]] = {}
    cur = sections.setdefault("SES", {})
    for line in re.split(r"\r\n|\r|\n", note):
        s = line.strip()
        if not s:
            continue
        m = re.fullmatch(r"\[(.+)\]", s)
        if m:
            cur = sections.setdefault(m[1], {})
            continue
        k, sep, v = s.partition("=")
        if sep:
            cur[k.strip()] = v.strip()
    return sections


def label_unit(s: str) -> tuple[str, str | None]:
    m = _LABEL_UNIT.match(s or "")
    return (m[1].strip(), m[2].strip()) if m else ((s or "").strip(), None)


class ScientaIbwTranslator:
    name = "scienta-ibw"
    version = "1.0.0"
    description = "Scienta Omicron SES spectra as Igor binary waves (.ibw, versions 2 and 5)"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        return best_score(paths, lambda p: 0.95 if _is_ses_ibw(p) else 0.0)

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        path = require_file(paths, _is_ses_ibw, "no Scienta SES Igor wave (.ibw with an [SES] note)")
        wave = read_ibw(read_bytes(path, MAX_BYTES), path.name)
        sections = parse_note(wave.note)
        ses = progress.track(sections.get("SES", {}), "note/SES")
        original: dict[str, Any] = {"note": sections, "wave": {
            "name": wave.name, "version": wave.version, "dims": wave.dims, "sfA": wave.sf_a, "sfB": wave.sf_b,
            "data_units": wave.data_units, "dim_units": wave.dim_units}}
        v = _variable({}, ses)
        c: dict[str, Any] = {}
        put(c, "software_version", text(ses.get("Version")))
        for key, voc in _CONST.items():
            put(c, voc, text(ses.get(key)))
        put(c, "measured_at", v.get("region_measured_at"))
        c["number_of_regions"] = 1
        xlabel, xunit = label_unit(wave.dim_units[0] if wave.dim_units else "")
        ylabel, yunit = label_unit(wave.data_units)
        v.update({"wave_name": wave.name, "igor_version": wave.version,
                  "abscissa_start": wave.sf_b[0], "abscissa_step": wave.sf_a[0],
                  "dimensions": " x ".join(str(d) for d in wave.dims if d > 0)})
        put(v, "abscissa_label", xlabel or None)
        put(v, "abscissa_unit", xunit)
        put(v, "ordinate_label", ylabel or None)
        put(v, "data_units", yunit)
        progress.header_read(original, c)
        warnings: list[str] = []
        scale = str(ses.get("Energy Scale") or "")
        if xlabel and scale and scale.lower() not in xlabel.lower():
            warnings.append(f"{path.name}: the note says Energy Scale={scale} but the wave's axis is "
                            f"{xlabel!r}; the axis is labelled as the wave states")
        data = np.asarray(wave.data)
        v["number_of_points"] = int(data.shape[0]) if data.ndim else 0
        x = wave.sf_b[0] + wave.sf_a[0] * np.arange(data.shape[0])
        xname = (xlabel or "x").lower()
        tables, arrays, preview = [], [], None
        if data.ndim == 1:
            tables.append(Table(path.stem, {xname: x, "intensity": data}, {xname: xunit, "intensity": yunit}))
            preview = Preview(x=x, y=data, x_label=f"{xname} ({xunit or '-'})", y_label=ylabel or "intensity",
                              title=str(v.get("region_name") or wave.name))
        else:
            arrays.append(Array(wave.name or path.stem, data, {"data_units": wave.data_units},
                                {xname: {"offset": wave.sf_b[0], "scale": wave.sf_a[0], "unit": xunit}}))
            total = data.reshape(data.shape[0], -1).sum(axis=1)
            tables.append(Table(path.stem, {xname: x, "intensity (sum)": total}, {xname: xunit}))
            preview = Preview(image=data if data.ndim == 2 else None, x=x if data.ndim != 2 else None,
                              y=total if data.ndim != 2 else None, title=wave.name)
        return TranslationResult(constant=c, variable=[v], original=original, tables=tables, arrays=arrays,
                                 preview=preview, warnings=warnings, stem=path.stem,
                                 used_keys=[f"wave/{k}" for k in ("name", "version", "dims", "sfA", "sfB",
                                                                  "data_units", "dim_units")])
