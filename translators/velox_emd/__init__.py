"""Thermo Fisher (FEI) Velox ``.emd`` files: HDF5 with per-dataset JSON metadata.

Layout (Velox "version" 8 and later): ``/Version`` (JSON), ``/Data/<Kind>/<guid>/Data``
(images ``HxWxframes``, spectrum images, spectra) each with ``Metadata`` = UTF-8 JSON stored
as a uint8 column, and ``/Thumbnail.jpg``. Values are SI (V, m, rad, A, s); they are converted
to the vocabulary's units. One variable row per dataset (detector, pixel size, shape).
Read with h5py (BSD); external links and virtual datasets are never followed.
"""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote
from typing import Any, Sequence

import numpy as np

from translators import progress
from translators.common import best_score, num, require_file, text, to_int
from translators.contract import Array, CorruptFile, Preview, TranslationResult, load_vocabulary
from translators.writer import flatten

MAX_ARRAY_BYTES = 512 << 20
_CONST = {  # vocabulary key -> (flat JSON path, factor from the file's SI unit)
    "manufacturer": ("Instrument/Manufacturer", None), "instrument_model": ("Instrument/InstrumentModel", None),
    "instrument_class": ("Instrument/InstrumentClass", None), "instrument_id": ("Instrument/InstrumentId", None),
    "software_version": ("Instrument/ControlSoftwareVersion", None),
    "computer_name": ("Instrument/ComputerName", None), "source_type": ("Acquisition/SourceType", None),
    "acceleration_voltage": ("Optics/AccelerationVoltage", 1e-3), "extractor_voltage": ("Optics/ExtractorVoltage", 1.0),
    "gun_lens": ("Optics/GunLensSetting", 0), "spot_index": ("Optics/SpotIndex", 0),
    "operating_mode": ("Optics/OperatingMode", None), "tem_sub_mode": ("Optics/TemOperatingSubMode", None),
    "illumination_mode": ("Optics/IlluminationMode", None), "objective_lens_mode": ("Optics/ObjectiveLensMode", None),
    "probe_mode": ("Optics/ProbeMode", None), "camera_length": ("Optics/CameraLength", 1e3),
    "magnification": ("Optics/NominalMagnification", 1.0), "convergence_angle": ("Optics/BeamConvergence", 1e3),
    "screen_current": ("Optics/ScreenCurrent", 1e9), "defocus": ("Optics/Defocus", 1e9),
    "field_of_view": ("Optics/FullScanFieldOfView/x", 1e6),
    "stage_x": ("Stage/Position/x", 1e6), "stage_y": ("Stage/Position/y", 1e6), "stage_z": ("Stage/Position/z", 1e6),
    "stage_alpha": ("Stage/AlphaTilt", 180 / math.pi), "stage_beta": ("Stage/BetaTilt", 180 / math.pi),
    "holder_type": ("Stage/HolderType", None), "dwell_time": ("Scan/DwellTime", 1e6),
    "frame_time": ("Scan/FrameTime", 1.0), "scan_rotation": ("Scan/ScanRotation", 180 / math.pi),
    "scan_width": ("Scan/ScanSize/width", 0), "scan_height": ("Scan/ScanSize/height", 0),
    "vacuum_mode": ("Vacuum/VacuumMode", None),
}


def _is_velox(p: Path) -> bool:
    from translators.safeio import read_head

    if read_head(p, 8) != b"\x89HDF\r\n\x1a\n":
        return False
    import h5py

    try:
        with h5py.File(p, "r", locking=False) as f:
            ver = f.get("Version")
            return isinstance(ver, h5py.Dataset) and b"Velox" in _bytes(ver[()]) and "Data" in f
    except Exception:  # noqa: BLE001 - sniff never raises
        return False


def _hard(group: Any, name: str) -> bool:
    import h5py

    try:
        return isinstance(group.get(name, getlink=True), h5py.HardLink)
    except (KeyError, OSError, ValueError):
        return False


def _bytes(v: Any) -> bytes:
    if isinstance(v, np.ndarray):
        v = v.ravel()[0] if v.dtype.kind == "O" or v.dtype.kind == "S" else v.tobytes()
    return v if isinstance(v, bytes) else str(v).encode("utf-8", "replace")


def _json(v: Any, where: str, warnings: list[str]) -> dict[str, Any]:
    raw = _bytes(v).rstrip(b"\0").strip()
    try:
        obj = json.loads(raw.decode("utf-8", "replace")) if raw else {}
    except ValueError as exc:
        warnings.append(f"{where}: metadata is not valid JSON ({exc}); kept out")
        return {}
    return obj if isinstance(obj, dict) else {}


#: A note (the acquisition log) larger than this is not a note: kept out, said in a warning.
MAX_NOTE = 1 << 16


def _note(ds: Any, where: str, warnings: list[str]) -> dict[str, Any]:
    """A /Data/Text entry: JSON ``{"text": ...}`` whose text is percent-encoded ("2020-07-29%2009%3A48..."),
    kept decoded so the log reads as the microscope wrote it."""
    if ds.dtype.kind not in "SO" or ds.size != 1 or ds.id.get_storage_size() > MAX_NOTE:
        warnings.append(f"{where}: not a text note ({ds.dtype}, {ds.size} values); kept out")
        return {}
    obj = _json(ds[()].ravel()[0], where, warnings)
    if isinstance(obj.get("text"), str):
        obj["text"] = unquote(obj["text"])
    return obj


def _value(flat: dict[str, Any], path: str, factor: float | int | None) -> Any:
    v = flat.get(path)
    if v is None or v == "":
        return None
    if factor is None:
        return text(v)
    if factor == 0:
        return to_int(v)
    f = num(v)
    return None if f is None else f * factor


class VeloxEmdTranslator:
    name = "velox-emd"
    version = "1.1.0"
    description = "Thermo Fisher Velox .emd (HDF5): images, spectrum images, per-dataset JSON metadata"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        return best_score(paths, lambda p: 0.98 if _is_velox(p) else 0.0)

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        import h5py

        path = require_file(paths, _is_velox, "no Velox .emd file (HDF5 with /Version naming Velox and /Data)")
        warnings: list[str] = []
        try:
            f = h5py.File(path, "r", locking=False)
        except (OSError, ValueError) as exc:
            raise CorruptFile(f"{path.name}: HDF5 cannot be opened ({exc})") from None
        with f:
            version = _json(f["Version"][()], f"{path.name}:/Version", warnings)
            datasets = []  # (kind, guid, group); only hard links: an external link would open another file
            notes: dict[str, Any] = {}  # datasets beside the groups: Velox's acquisition log (/Data/Text)
            data_root = f["Data"] if _hard(f, "Data") else None
            if data_root is None:
                raise CorruptFile(f"{path.name}: /Data is a link, not a group; not followed")
            for kind in list(data_root.keys())[:64]:
                if not _hard(data_root, kind) or not isinstance(data_root[kind], h5py.Group):
                    warnings.append(f"{path.name}: /Data/{kind} is a link; not followed")
                    continue
                grp = data_root[kind]
                for guid in list(grp.keys())[:4096]:
                    if not _hard(grp, guid):
                        warnings.append(f"{path.name}: /Data/{kind}/{guid} is a link; not followed")
                    elif isinstance(grp[guid], h5py.Group):
                        datasets.append((kind, guid, grp[guid]))
                    elif isinstance(grp[guid], h5py.Dataset):
                        notes[f"Data/{kind}/{guid}"] = _note(grp[guid], f"{path.name}:/Data/{kind}/{guid}", warnings)
            original: dict[str, Any] = {"Version": version, **notes}
            metas: list[dict[str, Any]] = []
            for kind, guid, g in datasets:
                meta: dict[str, Any] = {}
                if _hard(g, "Metadata") and isinstance(g.get("Metadata"), h5py.Dataset):
                    m = g["Metadata"]
                    col = m[:, 0] if m.ndim == 2 else m[()]
                    meta = _json(np.asarray(col, dtype=np.uint8).tobytes(), f"{path.name}:{m.name}", warnings)
                original[f"Data/{kind}/{guid}"] = meta
                metas.append(meta)
            if not datasets:
                warnings.append(f"{path.name}: /Data holds no dataset")
            first = flatten(metas[0]) if metas else {}
            const: dict[str, Any] = {}
            for key, (p, factor) in _CONST.items():
                v = _value(first, p, factor)
                if v is not None:
                    const[key] = v
            const["file_format"] = f"{version.get('format', 'Velox')} EMD version {version.get('version', '?')}"
            const["number_of_datasets"] = len(datasets)
            stamp = num(first.get("Acquisition/AcquisitionStartDatetime/DateTime"))
            if stamp:
                const["acquisition_date"] = datetime.fromtimestamp(stamp, timezone.utc).isoformat()
            progress.header_read(original, const)
            rows, arrays, preview = [], [], None
            for (kind, guid, g), meta in zip(datasets, metas):
                row, arr = self._dataset(path.name, kind, guid, g, flatten(meta), warnings)
                rows.append(row)
                if arr is not None:
                    arrays.append(arr)
                    if preview is None:
                        img = arr.data if arr.data.ndim == 2 else (arr.data[..., 0] if arr.data.ndim == 3 else None)
                        if img is not None and min(img.shape) > 1:
                            preview = Preview(image=img, title=f"{row.get('detector', kind)}")
        used = ["Version/format", "Version/version"] + [
            f"Data/{k}/{g}/{p}" for k, g, _ in datasets for p, _f in _CONST.values()]
        used += [f"Data/{k}/{g}/{p}" for k, g, _ in datasets for p in (
            "Acquisition/AcquisitionStartDatetime/DateTime", "BinaryResult/Detector", "BinaryResult/AcquisitionUnit",
            "BinaryResult/PixelSize/width", "BinaryResult/PixelSize/height", "BinaryResult/PixelUnitX")]
        return TranslationResult(constant=const, variable=rows, original=original, arrays=arrays,
                                 preview=preview, warnings=warnings, used_keys=used, stem=path.stem)

    def _dataset(self, name: str, kind: str, guid: str, g: Any, flat: dict[str, Any],
                 warnings: list[str]) -> tuple[dict[str, Any], Array | None]:
        import h5py

        row: dict[str, Any] = {"dataset_kind": kind, "dataset_id": guid}
        for key, p in (("detector", "BinaryResult/Detector"), ("acquisition_unit", "BinaryResult/AcquisitionUnit")):
            if text(flat.get(p)):
                row[key] = text(flat[p])
        unit = text(flat.get("BinaryResult/PixelUnitX"))
        factor, shown = {"m": (1e9, "nm"), "1/m": (1e-9, "1/nm")}.get(unit or "", (1.0, unit))
        for key, p in (("pixel_size_x", "BinaryResult/PixelSize/width"), ("pixel_size_y", "BinaryResult/PixelSize/height")):
            v = num(flat.get(p))
            if v is not None:
                row[key] = v * factor
        if shown:
            row["pixel_unit"] = shown
        idx = to_int(flat.get("BinaryResult/DetectorIndex"))
        if idx is not None:
            exp = num(flat.get(f"Detectors/Detector-{idx}/ExposureTime"))
            if exp is not None:
                row["exposure_time"] = exp
        ds = g.get("Data") if _hard(g, "Data") else None
        if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "iufb" or ds.is_virtual:
            warnings.append(f"{name}: {kind}/{guid} has no numeric Data; metadata only")
            return row, None
        if ds.size * ds.dtype.itemsize > MAX_ARRAY_BYTES:
            warnings.append(f"{name}: {kind}/{guid} is {ds.size * ds.dtype.itemsize} bytes, more than "
                            f"{MAX_ARRAY_BYTES}; left in raw/ only")
            return row, None
        try:
            data = np.asarray(ds[()])
        except (OSError, ValueError) as exc:
            warnings.append(f"{name}: {kind}/{guid}/Data cannot be read ({exc}); metadata only")
            return row, None
        if kind == "Image" and data.ndim == 3:
            row.update(image_height=data.shape[0], image_width=data.shape[1], frames=data.shape[2])
        label = row.get("detector", kind)
        axes = {}
        if "pixel_size_x" in row:
            axes = {"x": {"scale": row["pixel_size_x"], "unit": shown}, "y": {"scale": row.get("pixel_size_y"), "unit": shown}}
        return row, Array(f"{kind}_{label}_{guid[:8]}", data, {"detector": str(label), "kind": kind}, axes)
