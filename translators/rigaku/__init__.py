"""Rigaku SmartLab / Ultima XRD: ``.ras`` text (Shift-JIS headers, multi-scan) and ``.rasx`` zip."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators.common import best_score, pick_target
from translators.contract import CorruptFile, Preview, Table, TranslationResult, load_vocabulary
from translators.mapping import map_sources
from translators.rigaku.labels import by_label
from translators.rigaku.ras import RasScan, parse_ras
from translators.safeio import (text_start, decode_text, is_zip, open_zip, parse_xml, read_bytes, read_head,
                                xml_to_dict, zip_member)
from translators.writer import flatten

_AXIS_COLUMNS = {"TwoThetaTheta": "2theta", "TwoTheta": "2theta", "TwoThetaOmega": "2theta",
                 "TwoThetaChiPhi": "2theta_chi_phi", "Omega": "omega", "OmegaTwoTheta": "omega",
                 "Chi": "chi", "Phi": "phi", "Theta": "theta"}
_CONDITIONS = re.compile(r"^Data(\d+)/Me(?:a)?surementConditions(\d+)\.xml$")


def _axis_column(header: dict[str, Any]) -> str:
    internal = str(header.get("*MEAS_SCAN_AXIS_X_INTERNAL") or header.get("ScanInformation/AxisName") or "")
    if internal in _AXIS_COLUMNS:
        return _AXIS_COLUMNS[internal]
    return re.sub(r"[^A-Za-z0-9]+", "_", internal).strip("_").lower() or "x"


def _score(p: Path) -> float:
    suffix = p.suffix.lower()
    head = read_head(p, 256) if suffix == ".rasx" else text_start(read_head(p, 512))[:256]
    if head.startswith(b"*RAS_DATA_START") or head.startswith(b"*RAS_HEADER_START"):
        return 1.0
    if suffix == ".ras" and b"*RAS_" in head:
        return 0.9
    return 0.95 if suffix == ".rasx" and head.startswith(b"PK") else 0.0


class RigakuTranslator:
    name = "rigaku"
    version = "1.0.0"
    description = "Rigaku XRD: .ras (Shift-JIS headers, several scans per file) and .rasx (SmartLab Studio II zip)"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        return best_score(paths, _score)

    # ---- translate ----------------------------------------------------------------------

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        target, warnings = pick_target(paths, self.sniff, "a Rigaku .ras/.rasx file", "a Rigaku file")
        if is_zip(target):
            sources, data, original, w = self._read_rasx(target)
        else:
            sources, data, original, w = self._read_ras(target)
        warnings += w
        return self._result(target, sources, data, original, warnings)

    def _read_ras(self, path: Path) -> tuple[list[dict[str, Any]], list[np.ndarray | None], dict, list[str]]:
        text, enc = decode_text(read_bytes(path), where=path.name)
        scans, warnings = parse_ras(text, path.name)
        original: dict[str, Any] = {"encoding": enc}
        if len(scans) == 1:
            original["header"] = scans[0].header
        else:
            original["scans"] = [s.header for s in scans]
        data = [self._with_extra(s, path.name, warnings) for s in scans]
        return [dict(s.header) for s in scans], data, original, warnings

    @staticmethod
    def _with_extra(scan: RasScan, name: str, warnings: list[str]) -> np.ndarray | None:
        if scan.data is None:
            return None
        temp = scan.extra.get("temperature")
        if temp is not None and temp.ndim == 2 and temp.shape[1] >= 2:
            if len(temp) == len(scan.data):
                return np.column_stack([scan.data, temp[:, 1]])
            warnings.append(f"{name}: temperature block has {len(temp)} rows for {len(scan.data)} points; "
                            "not added to the table")
        return scan.data

    def _read_rasx(self, path: Path) -> tuple[list[dict[str, Any]], list[np.ndarray | None], dict, list[str]]:
        warnings: list[str] = []
        with open_zip(path) as zf:
            names = zf.namelist()
            conds = sorted((int(m.group(1)), n) for n in names if (m := _CONDITIONS.match(n)))
            if not conds:
                raise CorruptFile(f"{path.name}: no Data*/MesurementConditions*.xml inside; not a Rigaku .rasx "
                                  f"(members: {', '.join(names[:8])})")
            original: dict[str, Any] = {}
            if "root.xml" in names:
                original["root.xml"] = xml_to_dict(parse_xml(zip_member(zf, "root.xml", path.name), "root.xml"))
            sources, data = [], []
            for idx, cname in conds:
                where = f"{path.name}:{cname}"
                tree = xml_to_dict(parse_xml(zip_member(zf, cname, path.name), where))
                tree = tree if isinstance(tree, dict) else {}
                ras_pairs = self._ras_pairs(tree.get("RASHeader"))
                if ras_pairs:
                    tree["RASHeader"] = ras_pairs
                original[cname] = tree
                src = {**flatten({k: v for k, v in tree.items() if k != "RASHeader"}), **ras_pairs}
                sources.append(src)
                profile = f"Data{idx}/Profile{idx}.txt"
                if profile not in names:
                    warnings.append(f"{path.name}: {profile} is missing; scan {idx} has metadata only")
                    data.append(None)
                    continue
                text, _ = decode_text(zip_member(zf, profile, path.name), where=f"{path.name}/{profile}")
                rows = [ln.split() for ln in text.splitlines() if ln.strip()]
                try:
                    arr = np.asarray(rows, dtype=float)
                except ValueError:
                    raise CorruptFile(f"{where}: {profile} holds non-numeric or ragged rows") from None
                data.append(arr if arr.ndim == 2 else None)
        return sources, data, original, warnings

    @staticmethod
    def _ras_pairs(block: Any) -> dict[str, str]:
        pairs = block.get("Pair") if isinstance(block, dict) else None
        if isinstance(pairs, dict):
            pairs = [pairs]
        out: dict[str, str] = {}
        for p in pairs or []:
            s = p.get("string") if isinstance(p, dict) else None
            if isinstance(s, list) and s and isinstance(s[0], str):
                out[s[0]] = s[1] if len(s) > 1 and isinstance(s[1], str) else ""
        return out

    def _result(self, path: Path, sources: list[dict[str, Any]], data: list[np.ndarray | None],
                original: dict[str, Any], warnings: list[str]) -> TranslationResult:
        used: list[str] = []
        for src in sources:  # settings whose index varies (the attenuator axis, distances): by label
            derived, read = by_label(src)
            src.update(derived)
            used += read
        constant, variable, w = map_sources(sources, self.vocabulary())
        warnings += w
        tables, xs, ys = [], [], []
        for i, (src, arr) in enumerate(zip(sources, data), 1):
            if arr is None or arr.size == 0 or arr.ndim != 2 or arr.shape[1] < 2:
                continue
            xname = _axis_column(src)
            xunit = src.get("*MEAS_SCAN_UNIT_X") or src.get("ScanInformation/PositionUnit") or "deg"
            yunit = src.get("*MEAS_SCAN_UNIT_Y") or src.get("ScanInformation/IntensityUnit") or "counts"
            cols: dict[str, Any] = {xname: arr[:, 0], "intensity": arr[:, 1]}
            units: dict[str, str | None] = {xname: xunit, "intensity": yunit}
            if arr.shape[1] >= 3:
                cols["attenuation_factor"], units["attenuation_factor"] = arr[:, 2], None
            if arr.shape[1] >= 4:
                cols["temperature"], units["temperature"] = arr[:, 3], "degC"
            stem = path.stem if len(sources) == 1 else f"{path.stem}_scan{i}"
            tables.append(Table(name=stem, columns=cols, units=units))
            xs.append(arr[:, 0])
            ys.append(arr[:, 1])
        if not tables:
            warnings.append(f"{path.name}: no numeric data points were found")
        preview = None
        if xs:
            xname, xunit = next(iter(tables[0].units.items()))
            preview = Preview(x=xs if len(xs) > 1 else xs[0], y=ys if len(ys) > 1 else ys[0],
                              x_label=f"{xname} ({xunit})", y_label=str(tables[0].units.get("intensity")),
                              title=path.name)
        return TranslationResult(constant=constant, variable=variable, original=original, tables=tables,
                                 preview=preview, warnings=warnings, stem=path.stem,
                                 used_keys=sorted(set(used)))
