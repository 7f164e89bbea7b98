"""VAMAS (ISO 14976) surface-analysis spectra: XPS, AES, UPS, ISS, SIMS exports.

Written by Kratos, CasaXPS, SpecsLab Prodigy, PHI MultiPak and many others. The vocabulary
maps the standard's positional fields to readable terms; Kratos and Casa/Prodigy comment
lines add the lens mode, slit, aperture and neutraliser that the standard has no field for.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators.common import best_score, put, require_file, text, to_int
from translators.contract import Preview, Table, TranslationResult, load_vocabulary
from translators.vamas.parser import MAGIC, VamasBlock, VamasFile, _num, read_vamas

__all__ = ["VamasTranslator"]

_MODES = {
    "MAP": "spectra at map positions (MAP)", "MAPDP": "map with depth profile (MAPDP)",
    "MAPSV": "map of single values (MAPSV)",
    "MAPSVDP": "map of single values with depth profile (MAPSVDP)",
    "NORM": "normal spectra (NORM)", "SDP": "sputter depth profile (SDP)",
    "SDPSV": "sputter depth profile of single values (SDPSV)",
    "SEM": "electron image (SEM)", "NOEXP": "no experiment (NOEXP)",
}
_ANALYSER = {"FAT": "fixed analyser transmission (FAT)", "FRR": "fixed retard ratio (FRR)",
             "CAE": "constant analyser energy (CAE)", "CRR": "constant retard ratio (CRR)"}
_SCAN = {"REGULAR": "regular steps (REGULAR)", "IRREGULAR": "explicit abscissa (IRREGULAR)",
         "MAPPING": "mapping (MAPPING)"}
# Kratos Vision writes one "Key:Value" run per comment line; these are the ones we map.
_KRATOS = {
    "analyser_lens": re.compile(r"Lens Mode:\s*(\S+)"),
    "analyser_aperture": re.compile(r"Iris\(Aperture\):\s*(\S+)"),
    "charge_neutraliser": re.compile(r"C/N\s*:\s*(\S+)"),
    "total_acquisition_time": re.compile(r"Acquisition Time\(s\):\s*([-\d.eE+]+)"),
}
# CasaXPS/Prodigy write "Key = Value" comment lines.
_CASA = {"Analyzer lens": "analyser_lens", "Analyzer slit": "analyser_slit",
         "Group": "spectrum_group"}


class VamasTranslator:
    name = "vamas"
    version = "1.0.0"
    description = "VAMAS ISO 14976 surface-analysis spectra (.vms, .npl): XPS/AES/UPS/ISS/SIMS"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        return best_score(paths, _score)

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        path = require_file(paths, _starts_magic, f"no VAMAS file (first line must be '{MAGIC}')")
        vf = read_vamas(path)
        res = TranslationResult(warnings=list(vf.warnings))
        res.constant = _constant(vf)
        res.original = _original(vf)
        for i, blk in enumerate(vf.blocks, start=1):
            res.variable.append(_variable(blk, vf))
            _add_binding_energy(blk)
            res.tables.append(Table(name=_table_name(i, blk), columns=blk.columns,
                                    units=blk.units))
        res.preview = _preview(vf)
        return res


def _score(p: Path) -> float:
    with open(p, "rb") as fh:
        # Kratos ESCApe and others write blank lines (or a BOM) before the identifier
        head = fh.read(len(MAGIC) + 260).lstrip(b"\xef\xbb\xbf\r\n\t ")
    if head.split(b"\n", 1)[0].decode("latin-1").strip() == MAGIC:
        return 0.99
    return 0.6 if head.startswith(b"VAMAS Surface Chemical Analysis") else 0.0


def _starts_magic(p: Path) -> bool:
    with open(p, "rb") as fh:
        return fh.read(len(MAGIC) + 260).lstrip(b"\xef\xbb\xbf\r\n\t ")[:len(MAGIC)].decode("latin-1") == MAGIC


def _s(v: Any) -> str | None:
    """Text, with the standard's placeholders for "nothing here" read as nothing."""
    s = text(v)
    return None if s is None or s.lower() in ("not specified", "none") else s


def _int(v: Any) -> int | None:
    return to_int(v, _num)  # _num knows ISO 14976's 1E37 "no value"


def _constant(vf: VamasFile) -> dict[str, Any]:
    h, c = vf.header, {}
    put(c, "institution", _s(h["institution identifier"]))
    put(c, "instrument_model", _s(h["instrument model identifier"]))
    put(c, "operator", _s(h["operator identifier"]))
    put(c, "experiment_id", _s(h["experiment identifier"]))
    put(c, "experiment_mode", _MODES[h["experiment mode"]])
    put(c, "scan_mode", _SCAN[h["scan mode"]])
    put(c, "number_of_spectral_regions", h.get("number of spectral regions"))
    put(c, "number_of_analysis_positions", h.get("number of analysis positions"))
    put(c, "map_points_x", h.get("number of discrete x coordinates available in full map"))
    put(c, "map_points_y", h.get("number of discrete y coordinates available in full map"))
    put(c, "number_of_blocks", h["number of blocks"])
    if vf.exp_vars:
        put(c, "experimental_variable", _s("; ".join(
            f"{lab} [{unit}]" if unit and unit not in ("d", "n") else lab
            for lab, unit in vf.exp_vars)))
    put(c, "file_comment", _s(" | ".join(x.strip() for x in vf.comment if x.strip())))
    return c


def _excitation(label: str | None, energy: float | None) -> str | None:
    """'Al' at 1486.6 eV -> 'Al Kα'; Kratos 'Mono(Al (Mono))' -> 'Al Kα (monochromated)'."""
    if not label:
        return None
    mono = "mono" in label.lower()
    for el, e in (("Al", 1486.6), ("Mg", 1253.6), ("Ag", 2984.3), ("Cr", 5414.7),
                  ("Ga", 9251.7), ("Zr", 2042.4), ("Ti", 4510.8)):
        if re.search(rf"\b{el}\b", label) and (energy is None or abs(energy - e) < 1.5):
            return f"{el} Kα" + (" (monochromated)" if mono else "")
    if re.search(r"\bHe\s*I{1,2}\b", label):
        return label
    return label


def _variable(blk: VamasBlock, vf: VamasFile) -> dict[str, Any]:
    f, v = blk.fields, {}
    put(v, "block_id", _s(f.get("block identifier")))
    put(v, "sample_id", _s(f.get("sample identifier")))
    put(v, "measured_at", _when(f))
    put(v, "technique", _s(f.get("technique")))
    put(v, "map_x", _int(f.get("x coordinate")))
    put(v, "map_y", _int(f.get("y coordinate")))
    ev = f.get("experimental variable values") or []
    if ev:
        put(v, "experimental_variable_value", _num(ev[0]))
    label = _s(f.get("analysis source label"))
    energy = _num(f.get("analysis source characteristic energy"))
    put(v, "source_label", label)
    put(v, "excitation_source", _excitation(label, energy))
    put(v, "source_energy", energy)
    for key, iso in (("source_strength", "analysis source strength"),
                     ("source_beam_width_x", "analysis source beam width x"),
                     ("source_beam_width_y", "analysis source beam width y"),
                     ("field_of_view_x", "field of view x"), ("field_of_view_y", "field of view y"),
                     ("source_incidence_angle", "analysis source polar angle of incidence"),
                     ("source_azimuth", "analysis source azimuth"),
                     ("differential_width", "differential width"),
                     ("lens_magnification", "magnification of analyser transfer lens"),
                     ("work_function", "analyser work function or acceptance energy of atom or ion"),
                     ("target_bias", "target bias"),
                     ("analysis_width_x", "analysis width x"), ("analysis_width_y", "analysis width y"),
                     ("takeoff_polar_angle", "analyser axis take off polar angle"),
                     ("takeoff_azimuth", "analyser axis take off azimuth"),
                     ("dwell_time", "signal collection time"),
                     ("signal_time_correction", "signal time correction"),
                     ("sputter_energy", "sputtering source energy"),
                     ("sputter_current", "sputtering source beam current"),
                     ("sample_tilt", "sample normal polar angle of tilt"),
                     ("sample_tilt_azimuth", "sample normal tilt azimuth"),
                     ("sample_rotation", "sample rotation angle")):
        put(v, key, _num(f.get(iso)))
    mode = _s(f.get("analyser mode"))
    put(v, "analyser_mode", _ANALYSER.get(mode or "", mode))
    res = _num(f.get("analyser pass energy or retard ratio or mass resolution"))
    # The same line holds a pass energy (FAT), a retard ratio (FRR) or a mass resolution (SIMS).
    if mode == "FRR":
        put(v, "retard_ratio", res)
    elif f.get("technique", "") not in ("SIMS", "SIMS energy spec", "SNMS", "SNMS energy spec",
                                         "FABMS", "FABMS energy spec"):
        put(v, "pass_energy", res)
    put(v, "species", _s(f.get("species label")))
    put(v, "transition", _s(f.get("transition or charge state label")))
    put(v, "particle_charge", _int(f.get("charge of detected particle")))
    put(v, "abscissa_label", _s(f.get("abscissa label")))
    put(v, "abscissa_unit", _s(f.get("abscissa units")))
    x = blk.columns.get(blk.abscissa)
    if x is not None and len(x):
        put(v, "abscissa_start", float(x[0]))
        put(v, "abscissa_end", float(x[-1]))
        step = _num(f.get("abscissa increment"))
        if step is None and len(x) > 1:
            step = float(x[1] - x[0])
        put(v, "abscissa_step", step)
    put(v, "number_of_points", f.get("number of points"))
    cvars = f.get("corresponding variables") or []
    skip = 0 if vf.header["scan mode"] == "REGULAR" else 1
    if len(cvars) > skip:
        put(v, "ordinate_label", _s(cvars[skip][0]))
    put(v, "signal_mode", _s(f.get("signal mode")))
    put(v, "number_of_scans", _int(f.get("number of scans to compile this block")))
    put(v, "sputter_mode", _s(f.get("sputtering mode")))
    put(v, "block_comment", _s(" | ".join(x.strip() for x in blk.comment if x.strip())))
    _comments(blk.comment, v)
    return v


def _comments(lines: list[str], v: dict[str, Any]) -> None:
    text = "\n".join(lines)
    for key, rx in _KRATOS.items():
        m = rx.search(text)
        if m:
            put(v, key, _num(m.group(1)) if key == "total_acquisition_time" else _s(m.group(1)))
    for line in lines:
        k, sep, val = line.partition("=")
        if sep and k.strip() in _CASA:
            put(v, _CASA[k.strip()], _s(val))


def _when(f: dict[str, Any]) -> str | None:
    parts = [_int(f.get(k)) for k in ("year", "month", "day", "hours", "minutes")]
    sec = _num(f.get("seconds"))
    if any(p is None for p in parts) or sec is None:
        return None
    y, mo, d, h, mi = parts  # type: ignore[misc]
    if not (1900 < y < 3000 and 1 <= mo <= 12 and 1 <= d <= 31 and 0 <= h < 24 and 0 <= mi < 60):
        return None
    out = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{int(sec):02d}"
    gmt = _num(f.get("number of hours in advance of Greenwich Mean Time"))
    if gmt is not None and -14 <= gmt <= 14:
        sign = "+" if gmt >= 0 else "-"
        mins = int(round(abs(gmt) * 60))
        out += f"{sign}{mins // 60:02d}:{mins % 60:02d}"
    return out


def _original(vf: VamasFile) -> dict[str, Any]:
    blocks = []
    for blk in vf.blocks:
        d = dict(blk.fields)
        d["block comment"] = blk.comment
        blocks.append(d)
    return {"header": dict(vf.header), "comment": vf.comment,
            "experimental variables": [{"label": a, "units": b} for a, b in vf.exp_vars],
            "blocks": blocks}


def _add_binding_energy(blk: VamasBlock) -> None:
    """XPS/UPS kinetic-energy axis -> add binding energy = hν − KE (CasaXPS' convention)."""
    f = blk.fields
    hv = _num(f.get("analysis source characteristic energy"))
    label = blk.abscissa
    if (f.get("technique") in ("XPS", "UPS") and hv is not None and "kinetic" in label.lower()
            and (blk.units.get(label) or "").lower() == "ev" and "binding energy" not in blk.columns):
        cols = {"binding energy": np.round(hv - blk.columns[label], 9)}
        cols.update(blk.columns)
        blk.units["binding energy"] = "eV"
        blk.columns = cols


def _table_name(i: int, blk: VamasBlock) -> str:
    f = blk.fields
    tag = " ".join(x for x in (f.get("species label", ""), f.get("transition or charge state label", ""))
                   if x and x.lower() != "none") or f.get("block identifier", "")
    safe = re.sub(r"[^A-Za-z0-9]+", "_", tag).strip("_")[:40]
    return f"block{i:03d}" + (f"_{safe}" if safe else "")


def _preview(vf: VamasFile) -> Preview | None:
    if not vf.blocks:
        return None
    # Thumbnail shows the widest region (usually the survey); others are in the CSVs.
    blk = max(vf.blocks, key=lambda b: len(b.columns.get(b.abscissa, ())))
    xname = "binding energy" if "binding energy" in blk.columns else blk.abscissa
    names = [n for n in blk.columns if n not in (blk.abscissa, xname)]
    if not names:
        return None
    x_unit = blk.units.get(xname)
    y_unit = blk.units.get(names[0])
    f = blk.fields
    return Preview(x=blk.columns[xname], y=blk.columns[names[0]],
                   x_label=f"{xname}" + (f" ({x_unit})" if x_unit else ""),
                   y_label=names[0] + (f" ({y_unit})" if y_unit else ""),
                   title=" ".join(x for x in (f.get("block identifier"), f.get("technique")) if x))
