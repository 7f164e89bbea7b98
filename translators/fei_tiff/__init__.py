"""FEI / Thermo Fisher SEM, FIB and DualBeam TIFF (xT / xT2 software; ini text in TIFF tag 34682).

Older FEI instruments (Sirion/XL30 "SFEG") write the same ini text in tag 34680; both are read.
The ini text is parsed by us from the raw tag bytes so ``original`` keeps every value verbatim
as the vendor wrote it (tifffile's parser already converts numbers). All values are SI in the
file (m, V, A, s, Pa, rad); the table converts them to the units a facility user reads.

Magnification is not stored by xT. It is derived the way xT's data bar computes it:
``mag = [Image] MagCanvasRealWidth / HFW`` (MagCanvasRealWidth is the physical width, in m, of
the magnification reference the user chose; pynxtools-em and NexusLIMS derive it the same way).
When that key is absent or empty (xT2 writes it empty), we fall back to the classic "Polaroid"
reference width of 127 mm (5 in, the print size SEM magnification was historically quoted for),
and say so in ``magnification_reference``. The monitor width ([System] DisplayWidth) is *not*
used: it gives a number no data bar ever showed.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from translators.safeio import decode_text as _detect_text
from translators.common import best_score
from translators.contract import (Array, CorruptFile, Preview, TranslationResult, TranslatorError,
                                  UnsupportedFile, load_vocabulary)
from translators.fei_tiff.tiffio import (parse_ini, pixel_axes, raise_if_truncated, read_image,
                                         read_tag_bytes, sniff_tiff, us_datetime)

POLAROID_WIDTH_M = 0.127
DEG = 180.0 / math.pi
B = "<beam>"  # placeholder: the section named by [Beam] Beam (EBeam, IBeam, ...)
# key: (candidates [(section, key)], factor into vocabulary unit, kind)
TABLE: dict[str, tuple[list[tuple[str, str]], float, str]] = {
    "acceleration_voltage": ([(B, "HV"), ("Beam", "HV")], 1e-3, "num"),
    "working_distance": ([(B, "WD"), ("Stage", "WorkingDistance")], 1e3, "num"),
    "horizontal_field_width": ([(B, "HFW"), ("Scan", "HorFieldsize")], 1e6, "pos"),
    "vertical_field_width": ([(B, "VFW"), ("Scan", "VerFieldsize")], 1e6, "pos"),
    "spot_size": ([("Beam", "Spot"), (B, "Spot")], 1, "num"),
    "beam_current": ([(B, "BeamCurrent")], 1e12, "num"),
    "emission_current": ([(B, "EmissionCurrent")], 1e6, "num"),
    "aperture_diameter": ([(B, "ApertureDiameter")], 1e6, "pos"),
    "lens_mode": ([(B, "LensMode")], 1, "str"),
    "beam_type": ([("Beam", "Beam")], 1, "str"),
    "scan_rotation": ([("Beam", "ScanRotation"), (B, "ScanRotation")], DEG, "num"),
    "tilt_correction": ([(B, "TiltCorrectionIsOn")], 1, "str"),
    "detector_name": ([("Detectors", "Name")], 1, "str"),
    "detector_mode": ([("Detectors", "Mode")], 1, "str"),
    "dwell_time": ([("Scan", "Dwelltime"), ("EScan", "Dwell"), ("IScan", "Dwell")], 1e6, "pos"),
    "frame_time": ([("Scan", "FrameTime")], 1, "pos"),
    "line_integration": ([("EScan", "LineIntegration"), ("IScan", "LineIntegration")], 1, "int"),
    "frames_integrated": ([("Scan", "Integrate"), ("Image", "Integrate")], 1, "int"),
    "frames_averaged": ([("Scan", "Average"), ("Image", "Average")], 1, "int"),
    "pixel_width": ([("Scan", "PixelWidth"), ("EScan", "PixelWidth")], 1e9, "pos"),
    "pixel_height": ([("Scan", "PixelHeight"), ("EScan", "PixelHeight")], 1e9, "pos"),
    "resolution_x": ([("Image", "ResolutionX")], 1, "int"),
    "resolution_y": ([("Image", "ResolutionY")], 1, "int"),
    "stage_x": ([("Stage", "StageX")], 1e3, "num"),
    "stage_y": ([("Stage", "StageY")], 1e3, "num"),
    "stage_z": ([("Stage", "StageZ")], 1e3, "num"),
    "stage_rotation": ([("Stage", "StageR")], DEG, "num"),
    "stage_tilt": ([("Stage", "StageT")], DEG, "num"),
    "chamber_pressure": ([("Vacuum", "ChPressure")], 1, "num"),
    "vacuum_mode": ([("Vacuum", "UserMode")], 1, "str"),
    "specimen_current": ([("Specimen", "SpecimenCurrent")], 1e12, "num"),
    "beam_deceleration": ([("EBeamDeceleration", "ModeOn")], 1, "str"),
    "landing_energy": ([("EBeamDeceleration", "LandingEnergy")], 1e-3, "num"),
    "operator": ([("User", "User")], 1, "str"),
    "user_text": ([("User", "UserText")], 1, "str"),
    "instrument_model": ([("System", "SystemType")], 1, "str"),
    "system_type": ([("System", "Type")], 1, "str"),
    "instrument_serial": ([("System", "Dnumber")], 1, "str"),
    "column": ([("System", "Column")], 1, "str"),
    "electron_source": ([("System", "Source")], 1, "str"),
    "software_version": ([("System", "Software")], 1, "str"),
}


def _num(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        v = float(text.strip())
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _value(raw: str | None, factor: float, kind: str) -> Any:
    if raw is None or not raw.strip():
        return None  # xT writes "Key=" for values it does not know
    if kind == "str":
        return raw.strip()
    v = _num(raw)
    if v is None:
        return None
    if kind == "int":
        return int(v) if v == int(v) else None
    if kind == "pos" and v <= 0:
        return None
    return float(f"{v * factor:.10g}")


def hfw_nm(values: dict[str, Any]) -> float | None:
    hfw = values.get("horizontal_field_width")
    return hfw * 1e3 if isinstance(hfw, float) else None


def map_sections(ini: dict[str, dict[str, str]]) -> tuple[dict[str, Any], list[str]]:
    """Apply the vocabulary table and the derived values to parsed ini sections."""
    beam = (ini.get("Beam", {}).get("Beam") or "").strip() or "EBeam"
    out: dict[str, Any] = {}
    warnings: list[str] = []
    for key, (cands, factor, kind) in TABLE.items():
        for sec, k in cands:
            sec = beam if sec == B else sec
            v = _value(ini.get(sec, {}).get(k), factor, kind)
            if v is not None:
                out[key] = v
                break
    det = out.get("detector_name")
    if isinstance(det, str) and det in ini:  # per-detector settings live in a section of its name
        for key, k in (("detector_contrast", "Contrast"), ("detector_brightness", "Brightness")):
            v = _value(ini[det].get(k), 1, "num")
            if v is not None:
                out[key] = v
    nx = out.get("resolution_x")
    if "pixel_width" not in out and hfw_nm(out) and isinstance(nx, int) and nx > 0:
        # Nav-Cam / some FIB images carry no [Scan] block: pixel size = HFW / pixels
        out["pixel_width"] = float(f"{hfw_nm(out) / nx:.6g}")
    when = us_datetime(ini.get("User", {}).get("Date"), ini.get("User", {}).get("Time"),
                       ini.get("PrivateFei", {}).get("TimeOfCreation"))
    if when:
        out["acquired_at"] = when
    hfw_um = out.get("horizontal_field_width")
    if hfw_um:
        canvas = _num(ini.get("Image", {}).get("MagCanvasRealWidth"))
        if canvas and canvas > 0:
            ref, basis = canvas, f"[Image] MagCanvasRealWidth = {canvas * 1e3:g} mm"
        else:
            ref, basis = POLAROID_WIDTH_M, "Polaroid reference width 127 mm (MagCanvasRealWidth absent)"
            warnings.append("magnification derived from HFW with the 127 mm Polaroid reference")
        out["magnification"] = round(ref / (hfw_um * 1e-6), 1)
        out["magnification_reference"] = basis
    return out, warnings


class FeiTiffTranslator:
    name = "fei-tiff"
    version = "0.1.0"
    description = "FEI/Thermo Fisher SEM/FIB TIFF (xT metadata in TIFF tag 34682/34680)"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        return best_score(paths, lambda p: 0.95 if {34682, 34680} & sniff_tiff(p) else 0.0)

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        cands = [Path(p) for p in paths if self.sniff([Path(p)]) > 0]
        if not cands:
            raise_if_truncated(paths)
            raise UnsupportedFile(f"no FEI TIFF (tag 34682/34680) among {[Path(p).name for p in paths]}")
        path = cands[0]
        result = TranslationResult()
        try:
            raw = read_tag_bytes(path, (34682, 34680))
            ini = parse_ini(_detect_text(raw.rstrip(b"\0"), where=path.name)[0])
        except TranslatorError:
            raise
        except (OSError, ValueError) as exc:
            raise CorruptFile(f"{path.name}: cannot read the FEI metadata tag ({exc})") from exc
        if not ini:
            raise CorruptFile(f"{path.name}: FEI metadata tag holds no [Section] key=value text")
        result.original = {"fei_metadata": ini}
        result.constant, result.warnings = map_sections(ini)
        result.constant["file_name"] = path.name
        for extra in cands[1:]:
            result.warnings.append(f"{extra.name}: another FEI TIFF in the same measurement; "
                                   f"kept as raw file, metadata of {path.name} only")
        image = read_image(path)
        c = result.constant
        if "resolution_x" not in c and image.ndim >= 2:  # old files have no [Image] block
            c["resolution_x"] = int(image.shape[1])
        if "pixel_width" not in c and hfw_nm(c):
            c["pixel_width"] = float(f"{hfw_nm(c) / c['resolution_x']:.6g}")
        rows = result.constant.get("resolution_y")
        attrs: dict[str, Any] = {"source": path.name}
        if isinstance(rows, int) and image.ndim >= 2 and 0 < rows < image.shape[0]:
            # xT appends the data bar below the scanned rows; HDF5 gets the scan only.
            attrs["databar_rows_removed"] = int(image.shape[0] - rows)
            image = image[:rows]
        px = result.constant.get("pixel_width")
        py = result.constant.get("pixel_height", px)
        result.arrays.append(Array(path.stem, image, attrs, pixel_axes(image.shape, px, py) if px else {}))
        result.preview = Preview(image=image, title=path.name)
        return result
