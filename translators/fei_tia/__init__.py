"""FEI / Thermo Fisher TIA ``.emi`` + ``.ser`` (TEM/STEM images, spectra, spectrum images).

The ``.emi`` holds the microscope settings as an embedded ``<ObjectInfo>`` XML, whose
``ExperimentalDescription`` is a list of Label/Value/Unit triples: read by label, with the
unit the file states (a "High tension" in V or kV both end in kV). Each ``<stem>_N.ser`` holds
one signal's data (:mod:`translators.fei_tia.ser`). A measurement may bring the .emi with
several .ser files, a .ser alone (data without the settings) or an .emi alone (settings only);
what is missing is named in a warning.
"""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators import progress
from translators.common import best_score, num, text, to_int
from translators.contract import Array, CorruptFile, Preview, Table, TranslationResult, UnsupportedFile, load_vocabulary
from translators.fei_tia.ser import read_ser
from translators.mapping import MappingError, convert_unit
from translators.safeio import parse_xml, read_bytes, read_head, xml_to_dict
from translators.writer import flatten

MAX_EMI = 64 << 20
_SER_MAGIC = b"\x49\x49\x97\x01"
_UNITS = {"um": "um", "µm": "um", "nm": "nm", "mm": "mm", "m": "m", "kv": "kV", "v": "V", "ua": "uA", "na": "nA",
          "deg": "deg", "%": "%", "x": "", "s": "s", "ms": "ms"}
_FACTORS = {("V", "kV"): 1e-3, ("kV", "V"): 1e3, ("nm", "um"): 1e-3, ("um", "nm"): 1e3, ("mm", "m"): 1e-3,
            ("m", "mm"): 1e3, ("mm", "um"): 1e3, ("m", "um"): 1e6, ("nA", "uA"): 1e-3, ("ms", "s"): 1e-3}


def _is_ser(p: Path) -> bool:
    return read_head(p, 4) == _SER_MAGIC


def _is_emi(p: Path) -> bool:
    head = read_head(p, 1 << 16)
    return head[:2] == b"JK" and b"<ObjectInfo>" in head


def _convert(v: float, f: str, t: str) -> float:
    if f == t or not f:
        return v
    if (f, t) in _FACTORS:
        return v * _FACTORS[(f, t)]
    return float(convert_unit(v, f, t))


def read_emi(path: Path) -> tuple[dict[str, Any], dict[str, tuple[str, str]]]:
    """The ObjectInfo tree, and ExperimentalDescription as label -> (value, unit)."""
    data = read_bytes(path, MAX_EMI)
    i, j = data.find(b"<ObjectInfo>"), data.find(b"</ObjectInfo>")
    if i < 0 or j < i:
        raise CorruptFile(f"{path.name}: no complete <ObjectInfo> block (truncated .emi?)")
    xml = data[i:j + len(b"</ObjectInfo>")]
    xml = re.sub(rb"<TrueImageHeaderInfo>.*?</TrueImageHeaderInfo>", b"", xml, flags=re.S)
    root = parse_xml(xml.decode("latin-1").encode("utf-8"), path.name)
    labelled: dict[str, tuple[str, str]] = {}
    for d in root.iter("Data"):
        label = (d.findtext("Label") or "").strip()
        if label:
            labelled[label] = ((d.findtext("Value") or "").strip(), (d.findtext("Unit") or "").strip())
    tree = xml_to_dict(root)
    if isinstance(tree, dict):
        tree.pop("ExperimentalDescription", None)
        tree["ExperimentalDescription"] = {k: (v if not u else {"value": v, "unit": u}) for k, (v, u) in labelled.items()}
    return tree if isinstance(tree, dict) else {}, labelled


class FeiTiaTranslator:
    name = "fei-tia"
    version = "1.0.0"
    description = "FEI/Thermo Fisher TIA .emi + .ser (SER 0x0210/0x0220): images, spectra, spectrum images"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        return best_score(paths, lambda p: 0.95 if (_is_ser(p) or _is_emi(p)) else 0.0)

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        emis = [Path(p) for p in paths if _is_emi(Path(p))]
        sers = sorted(Path(p) for p in paths if _is_ser(Path(p)))
        if not emis and not sers:
            raise UnsupportedFile(", ".join(Path(p).name for p in paths) + ": no TIA .emi or .ser file")
        warnings: list[str] = []
        original: dict[str, Any] = {}
        const: dict[str, Any] = {}
        used: list[str] = []
        if emis:
            tree, labelled = read_emi(emis[0])
            original["emi"] = tree
            const, used = self._map_emi(tree, labelled, emis[0].name, warnings)
            if not sers:
                warnings.append(f"{emis[0].name}: no .ser file came with the .emi; settings only, no data")
        else:
            warnings.append(f"{sers[0].name}: no .emi file came with the .ser; data without the microscope settings")
        progress.header_read(original, const)
        rows, arrays, tables, preview = [], [], [], None
        for ser_path in sers:
            ser = read_ser(read_bytes(ser_path), ser_path.name)
            original[f"ser/{ser_path.name}"] = ser.header()
            used += [f"ser/{ser_path.name}/{k}" for k in ("SeriesVersion", "DataTypeID", "ValidNumberElements",
                                                          "Dimensions", "FirstElement")]
            row, arr, table, prev = self._ser(ser, ser_path)
            rows.append(row)
            arrays += arr
            tables += table
            preview = preview or prev
        const.update({k: v for k, v in (rows[0] if rows else {}).items() if k not in const})
        return TranslationResult(constant=const, variable=rows if len(rows) > 1 else [], original=original,
                                 arrays=arrays, tables=tables,
                                 preview=preview, warnings=warnings, used_keys=used,
                                 stem=(emis[0] if emis else sers[0]).stem)

    def _map_emi(self, tree: dict[str, Any], labelled: dict[str, tuple[str, str]], name: str,
                 warnings: list[str]) -> tuple[dict[str, Any], list[str]]:
        vocab = self.vocabulary()
        const: dict[str, Any] = {}
        used: list[str] = []
        flat = flatten(tree)
        for key, term in vocab.items():
            orig = term["originalName"]
            if orig.startswith("ExperimentalDescription/"):
                label = orig.split("/", 1)[1]
                if label not in labelled or not labelled[label][0]:
                    continue
                value, unit = labelled[label]
                used += [f"emi/ExperimentalDescription/{label}", f"emi/ExperimentalDescription/{label}/value",
                         f"emi/ExperimentalDescription/{label}/unit"]
                kind = term["schema"]["type"]
                if kind in ("number", "integer"):
                    f = num(value)
                    if f is None:
                        const[key] = value  # verbatim; the writer reports it
                        continue
                    u = _UNITS.get(unit.lower(), unit)
                    try:
                        f = _convert(f, u, term.get("unit", ""))
                    except MappingError as exc:
                        warnings.append(f"{name}: {label} = {value} {unit}: {exc}; kept only in original_metadata.json")
                        continue
                    const[key] = int(f) if kind == "integer" and float(f).is_integer() else f
                else:
                    const[key] = text(value)
            elif orig in flat and text(flat[orig]):
                used.append(f"emi/{orig}")
                const[key] = text(flat[orig])
        for k in ("dwell_time", "frame_time"):
            if k in const:
                f = num(const[k])
                const[k] = (f * 1e6 if k == "dwell_time" else f) if f is not None else const[k]
        if "acceleration_voltage" not in const:
            v = num(flat.get("ExperimentalConditions/MicroscopeConditions/AcceleratingVoltage"))
            if v is not None:
                const["acceleration_voltage"] = v / 1000.0
                used.append("emi/ExperimentalConditions/MicroscopeConditions/AcceleratingVoltage")
        if "acquisition_date" in const:
            try:
                const["acquisition_date"] = datetime.strptime(str(const["acquisition_date"]),
                                                              "%a %b %d %H:%M:%S %Y").isoformat()
            except ValueError:
                warnings.append(f"{name}: AcquireDate {const['acquisition_date']!r} is not a TIA date; "
                                "kept verbatim in original_metadata.json")
                del const["acquisition_date"]
        return const, used

    def _ser(self, ser: Any, path: Path) -> tuple[dict[str, Any], list[Array], list[Table], Preview | None]:
        row: dict[str, Any] = {"ser_version": hex(ser.version), "number_of_elements": ser.valid,
                               "data_kind": "spectra" if ser.data_type == 0x4120 else "images"}
        dims = [f"{d.size} {d.description or 'element'} ({d.units or '-'})" for d in ser.dimensions]
        row["series_dimensions"] = " x ".join(dims) or "single element"
        sizes = [d.size for d in ser.dimensions]
        pos = [d for d in ser.dimensions if d.units.lower() in ("meters", "m")]
        if pos:
            row["scan_step"] = abs(pos[0].delta) * 1e9
        cal = ser.calibration
        arrays: list[Array] = []
        tables: list[Table] = []
        preview = None
        data = ser.data
        if ser.data_type == 0x4120 and data.size:
            row.update(channels=cal["ArrayLength"], energy_offset=cal["CalibrationOffset"],
                       energy_per_channel=cal["CalibrationDelta"])
            energy = cal["CalibrationOffset"] + cal["CalibrationDelta"] * np.arange(cal["ArrayLength"])
            shaped = data.reshape(*sizes[::-1], -1) if int(np.prod(sizes)) == data.shape[0] and sizes else data
            arrays.append(Array(f"{path.stem}_spectra", shaped, {"dimensions": row["series_dimensions"]},
                                {"energy": {"offset": cal["CalibrationOffset"], "scale": cal["CalibrationDelta"],
                                            "unit": "eV"}}))
            total = data.reshape(-1, data.shape[-1]).sum(axis=0)
            tables.append(Table(f"{path.stem}_sum", {"energy": energy, "counts": total}, {"energy": "eV", "counts": "counts"}))
            preview = Preview(x=energy, y=total, x_label="energy (eV)", y_label="counts (sum)", title=path.stem)
        elif data.size:
            row.update(image_width=cal["ArraySizeX"], image_height=cal["ArraySizeY"],
                       pixel_size=abs(cal["CalibrationDeltaX"]) * 1e9)
            arrays.append(Array(f"{path.stem}_images", data, {"dimensions": row["series_dimensions"]},
                                {"x": {"scale": abs(cal["CalibrationDeltaX"]) * 1e9, "unit": "nm"}}))
            preview = Preview(image=data[0], title=path.stem)
        return row, arrays, tables, preview
