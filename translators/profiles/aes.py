"""nims-aes-survey: the RDE_AES ``AES-survey`` template (JEOL JAMP ``<name>.A`` sets: para, id, data).

Vendor keys are JEOL's ``$AP_*`` parameters (labedge keeps them without ``AP_``). The template's
constants come first from its own ``default_value.csv`` (the site's template file), as the official
program does. Coded values use the official program's words (analyser mode 1 = CAE, 2-5 = CRR;
data type 4 = Narrow; beam mode 1 = Spot; neutraliser 1 = inactive) and JEOL's mantissa/exponent
pairs its ``1.989x10^(-8)`` spelling. One ``variable`` row per region (ROI) of a narrow scan, one
for a wide (survey) scan.
"""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from translators.profiles import Profile, entry

_ANALYSER = {"1": "CAE", "2": "CRR", "3": "CRR", "4": "CRR", "5": "CRR"}
_DATATYPE = {"1": "SEM image", "3": "Wide", "4": "Narrow", "5": "Depth", "7": "Line", "8": "Auger image"}
_BEAM = {"1": "Spot", "2": "Scan", "3": "Limited Scan"}
_NEUTRALISER = {"1": "inactive", "2": "active"}
#: template term -> JEOL parameter read as it is (the last position's value for per-position ones)
_PLAIN = {"operator_identifier": "OPERATOR", "probe_energy": "PENERGY", "probe_diameter": "SPOSN_PDIA",
          "upper_left_x_coordinate": "SPOSN_BEAM_P1X", "upper_left_y_coordinate": "SPOSN_BEAM_P1Y",
          "lower_right_x_coordinate": "SPOSN_BEAM_P2X", "lower_right_y_coordinate": "SPOSN_BEAM_P2Y",
          "probe_polar_angle_to_sample_normal": "STGTILT", "comment": "COMMENT"}
_ROI = {"species_label_transitions": "SPC_ROI_NAME", "abscissa_start": "SPC_ROI_START", "abscissa_end": "SPC_ROI_STOP",
        "abscissa_increment": "SPC_ROI_STEP", "collection_time": "SPC_ROI_DWELL",
        "total_acquisition_number": "SPC_ROI_SWEEPS"}
_WIDE = {"abscissa_start": "SPC_WSTART", "abscissa_end": "SPC_WSTOP", "abscissa_increment": "SPC_WSTEP",
         "collection_time": "SPC_WDWELL", "total_acquisition_number": "SPC_WSWEEPS"}


def _last(v: Any) -> Any:
    """Per-position parameters (``{"1": ..., "2": ...}``): the last position's value."""
    if isinstance(v, dict):
        return v[max(v, key=lambda k: int(k) if str(k).isdigit() else 0)] if v else None
    if isinstance(v, list):
        return v[-1] if v else None
    return v


def _mantissa_exponent(v: Any) -> str | None:
    """JEOL writes 1.989e-8 as ``1.989 8``."""
    m = re.fullmatch(r"\s*([-+]?\d+(?:\.\d+)?)\s+(\d+)\s*", str(v or ""))
    return f"{m[1]}x10^(-{m[2]})" if m else None


def build(original: dict[str, Any], template: dict[str, Any], raw_files: list[Path]) -> tuple[dict[str, Any], list[str]]:
    para = original.get("para") or {}
    out: dict[str, Any] = {}
    warnings: list[str] = []

    def put(key: str, value: Any) -> None:
        if key in template and value not in (None, ""):
            out[key] = entry(value, template[key])

    for key, name in _PLAIN.items():
        put(key, _last(para.get(name)))
    try:
        when = datetime.strptime(str(para.get("ACQDATE", "")), "%Y%m%d%H%M%S")
    except ValueError:
        when = None
        if para.get("ACQDATE"):
            warnings.append(f"AP_ACQDATE {para['ACQDATE']!r} is not YYYYMMDDhhmmss; the date terms are left out")
    if when:
        put("measurement.measured_date", when.date().isoformat())
        for part in ("year", "month", "day", "hour", "minute", "second"):
            put(f"operation_date_time_{part}", getattr(when, part))
    mode = str(para.get("SPC_ANAMOD", ""))
    if mode:
        put("analyzer_mode", _ANALYSER.get(mode, "unknown"))
    if mode == "1":  # a pass energy exists only in constant-analyser-energy mode
        put("analyser_pass_energy", para.get("SPC_ES"))
    if "DATATYPE" in para:
        put("data_type", _DATATYPE.get(str(para["DATATYPE"]), "unknown"))
    if _last(para.get("SPOSN_BSMOD")):
        put("probe_scan_mode", _BEAM.get(str(_last(para["SPOSN_BSMOD"])), "unknown"))
    if "IGN_NEUT_MODE" in para:
        put("neutralization_active_mode", _NEUTRALISER.get(str(para["IGN_NEUT_MODE"]), "unknown"))
    put("probe_current", _mantissa_exponent(para.get("PCURRENT")))
    put("analysis_chamber_pressure_when_measurement_finished", _mantissa_exponent(para.get("CHAMBER_PRESS")))

    rows: list[dict[str, Any]] = []
    if isinstance(para.get("SPC_ROI_NAME"), dict) and str(para.get("DATATYPE")) != "3":
        for idx in sorted(para["SPC_ROI_NAME"], key=lambda k: int(k) if str(k).isdigit() else 0):
            row = {key: entry(str(para[name][idx]), template[key]) for key, name in _ROI.items()
                   if key in template and isinstance(para.get(name), dict) and para[name].get(idx) not in (None, "")}
            rows.append(row)
    elif any(name in para for name in _WIDE.values()):
        rows.append({key: entry(str(para[name]), template[key]) for key, name in _WIDE.items()
                     if key in template and para.get(name) not in (None, "")})
    return {"constant": out, "variable": [r for r in rows if r]}, warnings


# AES-depth shares AES-survey's metadata-def; its default_value.csv (analysis field) and its invoice
# (measurement_condition required) differ. The official program reads a depth set as the narrow
# layout (ROI rows); a type-5 file with several cycles keeps one row per ROI too (cycles: structured/).
PROFILES = (Profile("nims-aes-survey", ("jeol-aes",), "RDE_AES", "templates/AES-survey/tasksupport", build,
                    defaults="default_value.csv"),
            Profile("nims-aes-depth", ("jeol-aes",), "RDE_AES", "templates/AES-depth/tasksupport", build,
                    defaults="default_value.csv"))
