"""Zeiss SEM / FIB-SEM TIFF (SmartSEM; TIFF tag 34118 "CZ_SEM").

SmartSEM writes hundreds of ``AP_...`` (analogue parameters: label, value, unit) and ``DP_...``
(digital parameters: label, state) entries; tifffile decodes the tag into
``{key: (label, value[, unit])}``. Each value carries its own unit, so the table names a target
unit and ``units.convert`` rescales whatever SmartSEM wrote (a 1 nA probe current and a 250 pA
one land in the same pA field). Magnification arrives as text ("50.00 K X") in older SmartSEM
and as a number with unit "X" in newer versions; both are read.
"""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from translators.contract import (Array, CorruptFile, Preview, TranslationResult, UnsupportedFile,
                                  load_vocabulary)
from translators.fei_tiff.tiffio import jsonable, pixel_axes, raise_if_truncated, read_image, sniff_tiff
from translators.zeiss_tiff.units import convert

CZ_SEM = 34118
# key: (candidate SmartSEM keys, target unit or None, kind: num | int | str | bool)
TABLE: dict[str, tuple[list[str], str | None, str]] = {
    "acceleration_voltage": (["ap_actualkv", "ap_manualkv"], "kV", "num"),
    "working_distance": (["ap_wd", "ap_free_wd"], "mm", "num"),
    "field_width": (["ap_width"], "µm", "num"),
    "field_height": (["ap_height"], "µm", "num"),
    "pixel_size": (["ap_image_pixel_size", "ap_pixel_size"], "nm", "num"),
    "probe_current": (["ap_iprobe"], "pA", "num"),
    "specimen_current": (["ap_scm"], "pA", "num"),
    "aperture_size": (["ap_aperturesize"], "µm", "num"),
    "detector_name": (["dp_detector_channel", "dp_detector_type"], None, "str"),
    "detector_signal_b": (["dp_implied_detector"], None, "str"),
    "mixing": (["dp_mixing"], None, "bool"),
    "dwell_time": (["dp_dwell_time"], "µs", "num"),
    "scan_speed": (["dp_scanrate"], None, "int"),
    "line_time": (["ap_line_time"], "ms", "num"),
    "frame_time": (["ap_frame_time"], "s", "num"),
    "noise_reduction": (["dp_noise_reduction"], None, "str"),
    "line_average_count": (["ap_line_average_count"], None, "int"),
    "frame_average_count": (["ap_frame_average_count"], None, "int"),
    "frame_integration_count": (["ap_frame_int_count"], None, "int"),
    "stage_x": (["ap_stage_at_x"], "mm", "num"),
    "stage_y": (["ap_stage_at_y"], "mm", "num"),
    "stage_z": (["ap_stage_at_z"], "mm", "num"),
    "stage_tilt": (["ap_stage_at_t"], "deg", "num"),
    "stage_rotation": (["ap_stage_at_r"], "deg", "num"),
    "tilt_correction_angle": (["ap_tilt_angle"], "deg", "num"),
    "chamber_pressure": (["ap_chamber_pressure", "ap_system_vac"], "Pa", "num"),
    "gun_vacuum": (["ap_column_vac"], "Pa", "num"),
    "filament_current": (["ap_actualcurrent"], "A", "num"),
    "extractor_voltage": (["ap_actualext"], "kV", "num"),
    "brightness": (["ap_brightness"], "%", "num"),
    "contrast": (["ap_contrast"], "%", "num"),
    "collector_bias": (["ap_collector_bias"], "V", "num"),
    "column_type": (["dp_column_type"], None, "str"),
    "store_resolution": (["dp_image_store"], None, "str"),
    "operator": (["sv_user_name", "sv_operator"], None, "str"),
    "sample_id": (["sv_sample_id"], None, "str"),
    "user_text": (["sv_user_text"], None, "str"),
    "instrument_serial": (["sv_serial_number"], None, "str"),
    "software_version": (["sv_version"], None, "str"),
    "original_file_name": (["sv_file_name"], None, "str"),
}
_MAG = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([KkMm]?)\s*[Xx]\s*$")
_SERIAL = re.compile(r"^(.*?)-\d+-\d+\s*$")


def _entry(meta: dict[str, Any], key: str) -> tuple[Any, str | None] | None:
    e = meta.get(key)
    if not isinstance(e, (tuple, list)) or len(e) < 2:
        return None
    unit = e[2] if len(e) > 2 and isinstance(e[2], str) else None
    return e[1], unit


def _magnification(meta: dict[str, Any]) -> float | None:
    e = _entry(meta, "ap_mag")
    if e is None:
        return None
    value, unit = e
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if (unit or "X").strip().upper() == "X" else None
    m = _MAG.match(str(value))
    if not m:
        return None
    return float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6}[m.group(2).lower()]


def original_view(meta: dict[str, Any]) -> dict[str, Any]:
    """Every SmartSEM entry as the text SmartSEM shows ("WD = 3.9 mm"), keyed by its name."""
    out: dict[str, Any] = {}
    for k, e in meta.items():
        if k == "":  # unlabelled binary header block (pixel size, mag, kV ... in SI)
            out["header_values"] = jsonable(e)
        elif isinstance(e, (tuple, list)) and len(e) >= 2:
            unit = f" {e[2]}" if len(e) > 2 and e[2] not in (None, "") else ""
            out[str(k)] = f"{e[0]} = {jsonable(e[1])}{unit}"
        else:
            out[str(k)] = jsonable(e)
    return out


def map_cz_sem(meta: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    out: dict[str, Any] = {}
    warnings: list[str] = []
    for key, (cands, target, kind) in TABLE.items():
        for k in cands:
            e = _entry(meta, k)
            if e is None:
                continue
            value, unit = e
            if kind == "str":
                v: Any = str(value).strip() if str(value).strip() else None
            elif kind == "bool":
                v = value if isinstance(value, bool) else None
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                v = None
            elif kind == "int":
                v = int(value)
            else:
                v = convert(float(value), unit, target)
                if v is None:
                    warnings.append(f"{k}: unit '{unit}' cannot be converted to {target}; "
                                    f"kept in original only")
            if v is not None:
                out[key] = v
                break
    mag = _magnification(meta)
    if mag is not None:
        out["magnification"] = mag
    d, t = _entry(meta, "ap_date"), _entry(meta, "ap_time")
    if d and t:
        try:
            out["acquired_at"] = datetime.strptime(f"{d[0]} {t[0]}", "%d %b %Y %H:%M:%S").isoformat()
        except ValueError:
            warnings.append(f"date/time '{d[0]} {t[0]}' not in SmartSEM's 'DD Mon YYYY H:M:S' form")
    serial = out.get("instrument_serial")
    m = _SERIAL.match(serial) if isinstance(serial, str) else None
    if m:  # "ULTRA 55-36-06" -> model "ULTRA 55"
        out["instrument_model"] = m.group(1).strip()
    elif isinstance(out.get("column_type"), str):
        out["instrument_model"] = out["column_type"]
    return out, warnings


class ZeissTiffTranslator:
    name = "zeiss-tiff"
    version = "0.1.0"
    description = "Zeiss SmartSEM TIFF (CZ_SEM tag 34118): SEM/FIB-SEM images"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        return max((0.95 for p in paths if CZ_SEM in sniff_tiff(Path(p))), default=0.0)

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        cands = [Path(p) for p in paths if CZ_SEM in sniff_tiff(Path(p))]
        if not cands:
            raise_if_truncated(paths)
            raise UnsupportedFile(f"no Zeiss TIFF (tag 34118) among {[Path(p).name for p in paths]}")
        path = cands[0]
        meta = self._read_meta(path)
        result = TranslationResult(original={"cz_sem": original_view(meta)})
        result.constant, result.warnings = map_cz_sem(meta)
        result.constant["file_name"] = path.name
        for extra in cands[1:]:
            result.warnings.append(f"{extra.name}: another Zeiss TIFF in the same measurement; "
                                   f"kept as raw file, metadata of {path.name} only")
        image = read_image(path)
        if image.ndim not in (2, 3):
            raise CorruptFile(f"{path.name}: unexpected image shape {image.shape}")
        result.constant["image_width"] = int(image.shape[1])
        result.constant["image_height"] = int(image.shape[0])
        axes: dict[str, dict[str, Any]] = {}
        width_um = result.constant.get("field_width")
        if width_um:
            # The recorded pixel size refers to the store resolution; a resampled image has
            # its own, and the field width divided by the columns is what the pixels mean.
            px = width_um * 1e3 / image.shape[1]
            axes = pixel_axes(image.shape, px, px)
            rec = result.constant.get("pixel_size")
            if rec and abs(rec - px) > 0.01 * px:
                result.warnings.append(f"recorded pixel size {rec:g} nm differs from field width / "
                                       f"columns = {px:.4g} nm: the image was resampled after "
                                       f"acquisition; HDF5 axes use {px:.4g} nm")
        result.arrays.append(Array(path.stem, image, {"source": path.name}, axes))
        result.preview = Preview(image=image, title=path.name)
        return result

    @staticmethod
    def _read_meta(path: Path) -> dict[str, Any]:
        import tifffile

        size = path.stat().st_size
        try:
            with tifffile.TiffFile(path) as tif:
                tag = tif.pages[0].tags.get(CZ_SEM)
                if tag is None:
                    raise UnsupportedFile(f"{path.name}: no CZ_SEM tag 34118")
                if tag.valueoffset + tag.count > size:
                    raise CorruptFile(f"{path.name}: CZ_SEM tag runs past the end of the file")
                meta = tag.value
        except (CorruptFile, UnsupportedFile):
            raise
        except Exception as exc:
            raise CorruptFile(f"{path.name}: damaged TIFF/CZ_SEM tag ({type(exc).__name__}: {exc})") from exc
        if not isinstance(meta, dict) or not meta:
            raise CorruptFile(f"{path.name}: CZ_SEM tag 34118 could not be decoded into parameters")
        return meta
