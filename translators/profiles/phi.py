"""nims-xps-phi: the RDE_XPS ``ulvac_phi`` template (ULVAC-PHI MultiPak/SmartSoft ``.spe``/``.pro``).

The official program cannot run here: it converts PHI files with a Windows-only ``MPExport.exe``
first. labedge reads the same header (``SOFH`` block) itself and follows the official program's
rules for the template's terms, so there is no official output to compare against; the test
checks the values against the file and validity against the official metadata-def:
- values "number unit" (``XrayPower 119.75 W``) give the number, the unit is the template's;
- one ``variable`` row per spectral region (``SpectralRegDef``: name, increment, start, end,
  dwell, pass energy; ``SpectralRegDef2``: sweeps), times each depth-profile layer (``DepthCalDef``);
- the region name ``Su1s`` is peak ``Survey``; ``C1s`` is peak ``C``, transition ``1s``.
Unlike the official program, an ``ImageSizeXY`` of two numbers (no region) is accepted.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from translators.profiles import Profile, entry

_CONST = {"operator_identifier": "Operator", "institution_idendfier": "Institution", "measurement_technique": "Technique",
          "measurement_instrument": "InstrumentModel", "experiment_id": "ExperimentID", "file_property": "FileType",
          "sputtering_raster_area": "SputterRaster", "specimen_stage_rotation_setting_during_sputtering": "SampleRotation",
          "depth_profiling_preset_layer_number": "NoDepthReg", "comment": "SpatialAreaDesc"}
_CONST_NUMBER = {"sputtering_ion_energy": "SputterEnergy", "time_from_sputtering_to_measurement": "ProfSputterDelay"}
_ROW = {"xray_source": "XraySource", "analyzer_mode": "AnalyserMode",
        "measurement_acquisition_number_per_peak_sweep": "SurvNumCycles"}
_ROW_NUMBER = {"xray_power": "XrayPower", "xray_beam_diameter": "XrayBeamDiameter", "analyzer_work_function": "AnalyserWorkFcn",
               "xray_analyzer_angle": "SourceAnalyserAngle", "analyzer_solid_angle": "AnalyserSolidAngle"}


def _all(v: Any) -> list[str]:
    return [str(x) for x in v] if isinstance(v, list) else [] if v in (None, "") else [str(v)]


def _one(v: Any) -> str | None:
    vals = _all(v)
    return vals[0] if vals else None


def _number(v: Any) -> str | None:
    s = _one(v)
    return s.split()[0] if s and s.split() else None


def _peak(label: str) -> tuple[str, str]:
    parts = re.findall(r"\d+|\D+", label)
    if not parts:
        return label, ""
    if parts[0] == "Su":
        return "Survey", ""
    if parts[0] == "Va":
        return "Valence", ""
    if "_" in parts[0]:
        a, b = parts[0].split("_", 1)
        return a, b
    return parts[0], "".join(parts[1:])


def build(original: dict[str, Any], template: dict[str, Any], raw_files: list[Path]) -> tuple[dict[str, Any], list[str]]:
    h = original.get("header") or {}
    const: dict[str, Any] = {}

    def put(target: dict[str, Any], key: str, value: Any) -> None:
        if key in template and value not in (None, ""):
            target[key] = entry(value, template[key])

    for key, name in _CONST.items():
        put(const, key, _one(h.get(name)))
    for key, name in _CONST_NUMBER.items():
        put(const, key, _number(h.get(name)))
    date = (_one(h.get("AcqFileDate")) or "").split()
    if len(date) == 3 and all(p.isdigit() for p in date) and len(date[0]) == 4:
        put(const, "measurement.measured_date", f"{int(date[0]):04d}-{int(date[1]):02d}-{int(date[2]):02d}")

    depth = [d.split() for d in _all(h.get("DepthCalDef"))]
    layers = [{"cycle_control_preset": f"{t[7]}min {t[8]}cyc", "software_preset_sputtering_layer_name": t[1],
               "sputtering_layer_preset_interval_time": t[7], "sputtering_layer_preset_cycle_number": t[8]}
              for t in depth if len(t) > 8]
    if layers:
        put(const, "total_cycle_number", str(sum(int(t[8]) for t in depth if len(t) > 8 and t[8].isdigit())))

    cycles = _one(h.get("SurvNumCycles")) or "1"
    sweeps = [t.split() for t in _all(h.get("SpectralRegDef2"))]
    regions = []
    for i, tok in enumerate(t.split() for t in _all(h.get("SpectralRegDef"))):
        r: dict[str, Any] = {}
        if len(tok) > 2:
            peak, transition = _peak(tok[2])
            put(r, "peak_name", peak)
            put(r, "transitions", transition)
        for key, pos in (("abscissa_increment", 5), ("abscissa_start", 6), ("abscissa_end", 7),
                         ("collection_time", 10), ("pass_energy", 11)):
            if len(tok) > pos:
                put(r, key, tok[pos])
        if i < len(sweeps) and len(sweeps[i]) > 2:
            put(r, "peak_sweep_number", sweeps[i][2])
            if sweeps[i][2].isdigit() and cycles.isdigit():
                put(r, "total_acquisition_number", str(int(cycles) * int(sweeps[i][2])))
        regions.append(r)
    basic: dict[str, Any] = {}
    for key, name in _ROW.items():
        put(basic, key, _one(h.get(name)))
    for key, name in _ROW_NUMBER.items():
        put(basic, key, _number(h.get(name)))
    xyr = (_one(h.get("ImageSizeXY")) or "").split()
    for key, tok in zip(("analysis_width_x", "analysis_width_y", "analysis_region"), xyr):
        put(basic, key, tok)
    rows = [{**reg, **{k: entry(v, template[k]) for k, v in layer.items() if k in template}, **basic}
            for layer in (layers or [{}]) for reg in (regions or [{}])]
    return {"constant": const, "variable": [r for r in rows if r]}, []


PROFILES = (Profile("nims-xps-phi", ("phi-spe",), "RDE_XPS", "template/ulvac_phi/tasksupport", build,
                    defaults="default_value.csv"),)
