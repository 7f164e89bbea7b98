"""Gatan DigitalMicrograph .dm3/.dm4 (TEM images, diffraction, EELS spectra and spectrum images).

The tag tree is read by our own bounded reader (see ``dmfile.py`` for why not rosettasciio).
Vocabulary is a table: our key -> candidate tag paths under ``ImageTags`` (first present wins),
value kind and a factor into the vocabulary unit. Microscope-level values are ``constant``
(taken from the first real signal that has them); per-signal values go into ``variable``,
one row per signal (a file can hold several, e.g. a HAADF image plus a line profile).
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators.contract import (Array, CorruptFile, Preview, Table, TranslationResult,
                                  TranslatorError, UnsupportedFile, load_vocabulary)
from translators.gatan_dm.dmfile import ArrayRef, read_array, read_tags, sniff_header
from translators.gatan_dm.dmtime import acquisition_time

MI = "Microscope Info"
SPEC = "EELS Spectrometer"
# key: (candidate paths, kind, factor). kind: num | int | str | bool | posnum (0 = "not recorded")
CONSTANT: dict[str, tuple[list[tuple[str, ...]], str, float]] = {
    "microscope_name": ([("Session Info", "Microscope"), (MI, "Microscope")], "str", 1),
    "microscope_interface": ([(MI, "Name")], "str", 1),
    "operator": ([("Session Info", "Operator"), (MI, "Operator")], "str", 1),
    "specimen": ([("Session Info", "Specimen"), (MI, "Specimen")], "str", 1),
    "acceleration_voltage": ([(MI, "Voltage")], "posnum", 1e-3),
    "operation_mode": ([(MI, "Operation Mode")], "str", 1),
    "illumination_mode": ([(MI, "Illumination Mode")], "str", 1),
    "imaging_mode": ([(MI, "Imaging Mode")], "str", 1),
    "indicated_magnification": ([(MI, "Indicated Magnification")], "posnum", 1),
    "actual_magnification": ([(MI, "Actual Magnification")], "posnum", 1),
    "camera_length": ([(MI, "STEM Camera Length")], "posnum", 1),
    "spherical_aberration": ([(MI, "Cs(mm)")], "posnum", 1),
    "probe_current": ([(MI, "Probe Current (nA)")], "posnum", 1),
    "probe_size": ([(MI, "Probe Size (nm)")], "posnum", 1),
    "emission_current": ([(MI, "Emission Current (µA)")], "posnum", 1),
    "field_of_view": ([(MI, "Field of View (µm)")], "posnum", 1),
    "stage_x": ([(MI, "Stage Position", "Stage X")], "num", 1),
    "stage_y": ([(MI, "Stage Position", "Stage Y")], "num", 1),
    "stage_z": ([(MI, "Stage Position", "Stage Z")], "num", 1),
    "stage_alpha": ([(MI, "Stage Position", "Stage Alpha")], "num", 1),
    "stage_beta": ([(MI, "Stage Position", "Stage Beta")], "num", 1),
    "software_version": ([("GMS Version", "Saved"), ("GMS Version", "Created")], "str", 1),
}
VARIABLE: dict[str, tuple[list[tuple[str, ...]], str, float]] = {
    "signal_type": ([("Meta Data", "Signal")], "str", 1),
    "data_format": ([("Meta Data", "Format")], "str", 1),
    "acquisition_mode": ([("Meta Data", "Acquisition Mode")], "str", 1),
    "detector_name": ([("Acquisition", "Device", "Name"), ("DataBar", "Device Name"),
                       ("Session Info", "Detector")], "str", 1),
    "exposure_time": ([("EELS", "Acquisition", "Exposure (s)"),
                       ("Acquisition", "Parameters", "High Level", "Exposure (s)"),
                       ("DataBar", "Exposure Time (s)"),
                       ("Acquisition", "Parameters", "Detector", "exposure (s)")], "posnum", 1),
    "integration_time": ([("EELS", "Acquisition", "Integration time (s)")], "posnum", 1),
    "number_of_frames": ([("EELS", "Acquisition", "Number of frames")], "int", 1),
    "pixel_dwell_time": ([("DigiScan", "Sample Time")], "posnum", 1),
    "si_pixel_time": ([("SI", "Acquisition", "Pixel time (s)")], "posnum", 1),
    "spectrometer_name": ([(SPEC, "Instrument name")], "str", 1),
    "dispersion": ([(SPEC, "Dispersion (eV/ch)")], "posnum", 1),
    "energy_loss_offset": ([(SPEC, "Energy loss (eV)")], "num", 1),
    "drift_tube_enabled": ([(SPEC, "Drift tube enabled")], "bool", 1),
    "drift_tube_voltage": ([(SPEC, "Drift tube voltage (V)")], "num", 1),
    "slit_inserted": ([(SPEC, "Slit inserted")], "bool", 1),
    "slit_width": ([(SPEC, "Slit width (eV)")], "posnum", 1),
    "collection_semi_angle": ([("EELS", "Experimental Conditions",
                                "Collection semi-angle (mrad)")], "posnum", 1),
    "convergence_semi_angle": ([("EELS", "Experimental Conditions",
                                 "Convergence semi-angle (mrad)")], "posnum", 1),
    "dual_eels": ([("EELS", "Acquisition", "Dual acquire enabled")], "bool", 1),
}
# Cathodoluminescence (Gatan MonoCL / Monarc): no real CL file was available; the tag paths are the
# ones rosettasciio's DM reader maps for CL signals (shown there with "_" for " ", so both spellings).
_CL = "CL"
_MONARC = ("Acquisition", "Monarc Spectrometer")


def _both(*path: str) -> list[tuple[str, ...]]:
    return [path, tuple(p.replace(" ", "_") for p in path)]


VARIABLE.update({
    "grating_groove_density": (_both(_CL, "Acquisition", "Dispersion grating (lines/mm)"), "posnum", 1),
    "grating": (_both(*_MONARC, "Grating"), "str", 1),
    "pmt_voltage": (_both(*_MONARC, "PMT HV"), "num", 1),
    "central_wavelength": (_both(_CL, "Acquisition", "Central wavelength (nm)"), "posnum", 1),
    "start_wavelength": (_both(_CL, "Acquisition", "Start wavelength (nm)"), "num", 1),
    "wavelength_step": (_both(_CL, "Acquisition", "Step-size (nm)"), "posnum", 1),
    "cl_dwell_time": (_both(_CL, "Acquisition", "Dwell time (s)"), "posnum", 1),
})
VARIABLE["exposure_time"][0].extend(_both(_CL, "Acquisition", "Exposure (s)"))
VARIABLE["number_of_frames"][0].extend(_both(_CL, "Acquisition", "Number of frames"))
_APERTURE_RE = re.compile(r"^\s*([0-9.]+)\s*mm\s*$")


def _get(d: Any, path: tuple[str, ...]) -> Any:
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _convert(raw: Any, kind: str, factor: float) -> Any:
    if raw is None or isinstance(raw, (dict, list, ArrayRef)):
        return None
    if kind == "str":
        return raw.strip() if isinstance(raw, str) and raw.strip() else None
    if kind == "bool":
        return bool(raw) if isinstance(raw, (bool, int, float)) else None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        return None
    if kind == "int":
        return int(raw)
    if kind == "posnum" and raw == 0:  # DM writes 0 when the microscope did not report it
        return None
    return round(float(raw) * factor, 12)


def _apply(table: dict[str, tuple[list[tuple[str, ...]], str, float]],
           tags: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, (paths, kind, factor) in table.items():
        for p in paths:
            v = _convert(_get(tags, p), kind, factor)
            if v is not None:
                out[key] = v
                break
    return out


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    if isinstance(o, ArrayRef):
        return repr(o)
    return o


def _safe(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")
    return s[:40] or "signal"


class GatanDMTranslator:
    name = "gatan-dm"
    version = "0.1.0"
    description = "Gatan DigitalMicrograph DM3/DM4: TEM/STEM images, diffraction, EELS spectra and spectrum images"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        best = 0.0
        for p in paths:
            try:
                with Path(p).open("rb") as fh:
                    head = fh.read(16)
            except (OSError, ValueError):
                continue
            if sniff_header(head):
                ext = Path(p).suffix.lower() in (".dm3", ".dm4")
                best = max(best, 0.95 if ext else 0.6)
        return best

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        files = [Path(p) for p in paths if Path(p).suffix.lower() in (".dm3", ".dm4")]
        if not files:
            files = [Path(p) for p in paths if self.sniff([Path(p)]) > 0]
        if not files:
            raise UnsupportedFile(f"no .dm3/.dm4 file among {[Path(p).name for p in paths]}")
        result = TranslationResult()
        for path in files:
            self._translate_file(path, result, multi=len(files) > 1)
        if not result.variable:
            raise CorruptFile(f"{files[0].name}: no image data found in the DM ImageList")
        return result

    def _translate_file(self, path: Path, result: TranslationResult, multi: bool) -> None:
        try:
            root, version, _ = read_tags(path)
        except TranslatorError:
            raise
        except (OSError, ValueError, UnicodeError, KeyError) as exc:
            raise CorruptFile(f"{path.name}: cannot read DM tags ({exc})") from exc
        result.original[path.name if multi else "tags"] = _jsonable(root)
        images = root.get("ImageList")
        if not isinstance(images, dict) or not images:
            raise CorruptFile(f"{path.name}: DM file has no ImageList")
        entries = list(images.values())
        # DigitalMicrograph stores an RGB thumbnail of the document as the first entry.
        if len(entries) > 1 and _get(entries[0], ("ImageData", "DataType")) == 23:
            entries = entries[1:]
        for idx, img in enumerate(entries):
            if not isinstance(img, dict):
                continue
            tags = img.get("ImageTags") if isinstance(img.get("ImageTags"), dict) else {}
            for k, v in _apply(CONSTANT, tags).items():
                result.constant.setdefault(k, v)
            if "acquired_at" not in result.constant:
                when, warn = acquisition_time(tags)
                if when:
                    result.constant["acquired_at"] = when
                if warn:
                    result.warnings.append(f"{path.name}: {warn}")
            result.constant.setdefault("file_format", f"DM{version}")
            row = self._signal(path, idx, img, tags, result)
            if row:
                result.variable.append(row)

    def _signal(self, path: Path, idx: int, img: dict[str, Any], tags: dict[str, Any],
                result: TranslationResult) -> dict[str, Any] | None:
        data = img.get("ImageData")
        if not isinstance(data, dict) or not isinstance(data.get("Data"), ArrayRef):
            result.warnings.append(f"{path.name}: ImageList entry {idx} has no data array; skipped")
            return None
        dims_raw = data.get("Dimensions")
        dims = [v for v in dims_raw.values()] if isinstance(dims_raw, dict) else []
        if not dims or not all(isinstance(d, int) and d > 0 for d in dims):
            raise CorruptFile(f"{path.name}: ImageList entry {idx} has bad Dimensions {dims}")
        ref: ArrayRef = data["Data"]
        if data.get("DataType") == 23:  # packed RGBA: 4 bytes per pixel
            ref = ArrayRef(ref.offset, ref.count * 4, "u1", ref.little)
            arr = read_array(path, ref, tuple(reversed(dims)) + (4,))[..., :3]
        elif data.get("DataType") in (3, 13) and ref.dtype in ("f4", "f8"):
            # complex images are stored as (re, im) float pairs
            arr = read_array(path, ref, tuple(reversed(dims)) + (2,))
            cplx = np.dtype("c8" if ref.dtype == "f4" else "c16").newbyteorder(arr.dtype.byteorder)
            arr = arr.view(cplx)[..., 0]
        else:
            arr = read_array(path, ref, tuple(reversed(dims)))  # DM: x fastest -> (.., y, x)
        title = img.get("Name") if isinstance(img.get("Name"), str) else f"signal {idx}"
        cal = _get(data, ("Calibrations", "Dimension"))
        cals = list(cal.values()) if isinstance(cal, dict) else []
        axes: dict[str, dict[str, Any]] = {}
        names = []
        for i, size in enumerate(dims):
            c = cals[i] if i < len(cals) and isinstance(cals[i], dict) else {}
            scale = c.get("Scale") if isinstance(c.get("Scale"), (int, float)) else 1.0
            origin = c.get("Origin") if isinstance(c.get("Origin"), (int, float)) else 0.0
            unit = c.get("Units") if isinstance(c.get("Units"), str) else ""
            name = "energy_loss" if unit == "eV" else ("x", "y", "z")[i] if i < 3 else f"dim{i}"
            names.append(name)
            axes[name] = {"scale": float(scale), "offset": float(-origin * scale),
                          "unit": unit or None, "size": int(size)}
        bright = _get(data, ("Calibrations", "Brightness", "Units"))
        y_unit = bright if isinstance(bright, str) and bright else "counts"
        row: dict[str, Any] = {"signal_title": title, "dimensions": " x ".join(map(str, dims)),
                               "data_type": str(arr.dtype)}
        row.update(_apply(VARIABLE, tags))
        label = _get(tags, (SPEC, "Aperture label"))
        m = _APERTURE_RE.match(label) if isinstance(label, str) else None
        if m:
            row["spectrometer_aperture"] = float(m.group(1))
        row["axis_scale"] = axes[names[0]]["scale"]
        if axes[names[0]]["unit"]:
            row["axis_unit"] = axes[names[0]]["unit"]
        stem = f"{path.stem}_{idx}_{_safe(title)}"
        if arr.ndim == 1:
            ax = axes[names[0]]
            x = ax["offset"] + ax["scale"] * np.arange(arr.shape[0])
            xname = names[0] if ax["unit"] else "channel"
            result.tables.append(Table(stem, {xname: x, "intensity": np.asarray(arr, dtype=float)},
                                       {xname: ax["unit"], "intensity": y_unit}))
            row.setdefault("data_format", "Spectrum" if ax["unit"] == "eV" else "Line profile")
            if result.preview is None:
                result.preview = Preview(x=x, y=np.asarray(arr, dtype=float),
                                         x_label=f"{xname} ({ax['unit'] or 'channel'})",
                                         y_label=y_unit, title=title)
            return row
        numpy_axes = {names[len(dims) - 1 - k]: axes[names[len(dims) - 1 - k]]
                      for k in range(len(dims))}
        result.arrays.append(Array(stem, arr, {"title": title, "intensity_unit": y_unit},
                                   numpy_axes))
        if arr.ndim == 2 or (arr.ndim == 3 and data.get("DataType") == 23):
            row.setdefault("data_format", "Image")
            if result.preview is None:
                shown = np.abs(arr) if np.iscomplexobj(arr) else np.asarray(arr)
                result.preview = Preview(image=shown, title=title)
        elif "energy_loss" in names:
            # spectrum image: also give the summed spectrum as CSV and as the preview plot
            e_axis = len(dims) - 1 - names.index("energy_loss")
            other = tuple(k for k in range(arr.ndim) if k != e_axis)
            total = arr.sum(axis=other, dtype=np.float64)  # buffered cast: no float64 copy
            ax = axes["energy_loss"]
            x = ax["offset"] + ax["scale"] * np.arange(total.shape[0])
            result.tables.append(Table(f"{stem}_sum", {"energy_loss": x, "intensity_sum": total},
                                       {"energy_loss": "eV", "intensity_sum": y_unit}))
            row.setdefault("data_format", "Spectrum image")
            if result.preview is None:
                result.preview = Preview(x=x, y=total, x_label="energy loss (eV)",
                                         y_label=f"{y_unit} (sum)", title=f"{title} (sum)")
        return row
