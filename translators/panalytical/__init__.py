"""PANalytical / Malvern Panalytical ``.xrdml`` (XRDMeasurement schema 1.0-2.x).

Handles the variants seen in the field: ``<intensities>`` (1.3+) or ``<counts>`` (older),
start/end positions or explicit ``<listPositions>``, several ``<scan>`` elements (repeated
scans, area scans), optional beam-attenuation factors, and the free-text ``<comment>``
entries ("Key=Value") that carry the configuration and diffractometer system.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence
from xml.etree import ElementTree as ET

import numpy as np

from translators.common import best_score, pick_target
from translators.contract import CorruptFile, Preview, Table, TranslationResult, UnsupportedFile, load_vocabulary
from translators.mapping import map_sources
from translators.safeio import local, parse_xml, read_bytes, read_head, xml_to_dict
from translators.writer import flatten


def _child(el: ET.Element | None, name: str) -> ET.Element | None:
    if el is None:
        return None
    return next((c for c in el if local(c.tag) == name), None)


def _children(el: ET.Element | None, name: str) -> list[ET.Element]:
    return [] if el is None else [c for c in el if local(c.tag) == name]


def _numbers(el: ET.Element | None, where: str) -> np.ndarray:
    if el is None or not (el.text or "").strip():
        return np.empty(0)
    try:
        return np.asarray((el.text or "").split(), dtype=float)
    except ValueError:
        raise CorruptFile(f"{where}: <{local(el.tag)}> holds non-numeric values") from None


def _comment_entries(el: ET.Element | None) -> dict[str, str]:
    """'<entry>Goniometer=PW3050/60 (Theta/2Theta); Minimum step ...</entry>' -> {'Goniometer': ...}."""
    out: dict[str, str] = {}
    for i, e in enumerate(_children(el, "entry")):
        text = (e.text or "").strip()
        if not text:
            continue
        key, sep, val = text.partition("=")
        if sep and key.strip() and len(key) < 60:
            out[key.strip()] = val.strip().split(";")[0].split(", Owner=")[0].strip()
        else:
            out[f"entry{i}"] = text
    return out


def _score(p: Path) -> float:
    head = read_head(p, 1024)
    if b"xrdMeasurements" in head or b"www.xrdml.com" in head:
        return 1.0
    return 0.7 if p.suffix.lower() == ".xrdml" and head.lstrip().startswith(b"<") else 0.0


class PanalyticalTranslator:
    name = "panalytical"
    version = "1.0.0"
    description = "PANalytical/Malvern Panalytical XRD: .xrdml (XRDMeasurement 1.x/2.x), repeated and multiple scans"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        return best_score(paths, _score)

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        target, warnings = pick_target(paths, self.sniff, "a PANalytical .xrdml file", "an XRDML file")
        root = parse_xml(read_bytes(target), target.name)
        if local(root.tag) != "xrdMeasurements":
            raise UnsupportedFile(f"{target.name}: root element is <{local(root.tag)}>, not <xrdMeasurements>")
        original = xml_to_dict(root)
        original = original if isinstance(original, dict) else {}
        self._drop_data(original)
        common = flatten({k: v for k, v in original.items() if not k.startswith("xrdMeasurement")})
        common.update({f"comment/{k}": v for k, v in _comment_entries(_child(root, "comment")).items()})
        sources: list[dict[str, Any]] = []
        tables: list[Table] = []
        measurements = _children(root, "xrdMeasurement")
        if not measurements:
            raise CorruptFile(f"{target.name}: no <xrdMeasurement> element; truncated or not a measurement file")
        for mi, meas in enumerate(measurements, 1):
            meas_flat = flatten({k: v for k, v in xml_to_dict(meas).items() if not k.startswith("scan")}
                                if isinstance(xml_to_dict(meas), dict) else {})
            meas_flat = {f"xrdMeasurement/{k}": v for k, v in meas_flat.items()}
            scans = _children(meas, "scan")
            if not scans:
                warnings.append(f"{target.name}: measurement {mi} has no <scan>")
            for si, scan in enumerate(scans, 1):
                where = f"{target.name} scan {si}"
                sdict = xml_to_dict(scan)
                sdict = sdict if isinstance(sdict, dict) else {}
                self._drop_data(sdict)
                src = {**common, **meas_flat, **{f"scan/{k}": v for k, v in flatten(sdict).items()}}
                table = self._scan_table(scan, where, src, warnings)
                stem = target.stem if len(scans) * len(measurements) == 1 else f"{target.stem}_scan{len(tables) + 1}"
                if table is not None:
                    table.name = stem
                    tables.append(table)
                sources.append(src)
        if not sources:
            sources = [common]
        constant, variable, w = map_sources(sources, self.vocabulary())
        warnings += w
        preview = None
        if tables:
            preview = Preview(x=[t.columns["2theta"] for t in tables], y=[t.columns["intensity"] for t in tables],
                              x_label="2theta (deg)", y_label=str(tables[0].units["intensity"]), title=target.name)
        return TranslationResult(constant=constant, variable=variable, original=original, tables=tables,
                                 preview=preview, warnings=warnings, stem=target.stem)

    @staticmethod
    def _drop_data(tree: dict[str, Any]) -> None:
        """Intensity arrays are data, not metadata: keep them out of original_metadata.json."""
        for v in list(tree.values()):
            if isinstance(v, dict):
                for k in ("intensities", "counts", "listPositions", "beamAttenuationFactors"):
                    if isinstance(v.get(k), (str, dict)):
                        v[k] = "(data: see structured/)"
                PanalyticalTranslator._drop_data(v)
            elif isinstance(v, list):
                for item in v:
                    if isinstance(item, dict):
                        PanalyticalTranslator._drop_data(item)

    @staticmethod
    def _scan_table(scan: ET.Element, where: str, src: dict[str, Any], warnings: list[str]) -> Table | None:
        points = _child(scan, "dataPoints")
        if points is None:
            warnings.append(f"{where}: no <dataPoints>; the scan is truncated or empty")
            return None
        ints = _child(points, "intensities")
        if ints is None:
            ints = _child(points, "counts")
        y = _numbers(ints, where)
        if y.size == 0:
            warnings.append(f"{where}: no intensity values")
            return None
        unit = (ints.attrib.get("unit") if ints is not None else None) or "counts"
        x = None
        for pos in _children(points, "positions"):
            if pos.attrib.get("axis") not in ("2Theta", "2theta"):
                continue
            lst = _child(pos, "listPositions")
            if lst is not None:
                x = _numbers(lst, where)
            else:
                start, end = _child(pos, "startPosition"), _child(pos, "endPosition")
                if start is not None and end is not None:
                    try:
                        x = np.linspace(float(start.text or ""), float(end.text or ""), y.size)
                    except ValueError:
                        raise CorruptFile(f"{where}: 2Theta start/end position is not a number") from None
        if x is None or x.size != y.size:
            warnings.append(f"{where}: no usable 2Theta positions for {y.size} points; the point index is used")
            x = np.arange(y.size, dtype=float)
        elif y.size > 1:
            src["scan/step_2theta"] = float((x[-1] - x[0]) / (y.size - 1))
        src["scan/data_count"] = int(y.size)
        cols: dict[str, Any] = {"2theta": x, "intensity": y}
        units: dict[str, str | None] = {"2theta": "deg", "intensity": unit}
        att = _numbers(_child(points, "beamAttenuationFactors"), where)
        if att.size == y.size:
            cols["beam_attenuation_factor"], units["beam_attenuation_factor"] = att, None
        return Table(name="scan", columns=cols, units=units)


__all__ = ["PanalyticalTranslator"]
