"""SpecsLab2 XML (CORBA XMLSerializer) files: RegionGroup -> RegionData -> cycles -> scans.

Raw counts are stored per analyser step and detector channel, (values + mcd_head + mcd_tail)
steps x channels, interleaved by step. Channel j is offset from the nominal energy by
shift_j x pass energy; the spectrum is the sum over channels re-aligned by that offset
(counts at nominal point k come from step k + mcd_head - round(shift_j * Epass / delta)).
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators.common import best_score, num, put, require_file, text, to_int
from translators.contract import CorruptFile, Preview, Table, TranslationResult, load_vocabulary
from translators.safeio import read_text_head, text_start
from translators.specs.common import MODES

MAX_BYTES = 256 * 1024 * 1024
_SCALAR = ("string", "double", "float", "long", "ulong", "short", "ushort", "boolean", "enum")


def _is_xml(head: bytes) -> bool:
    return b"XMLSerializer" in head[:400] and b"CORBA XML" in head[:400] or \
        b"IDL:specs.de/Serializer" in head


def _is_xml_file(p: Path) -> bool:
    return _is_xml(read_text_head(p, 8192))


class SpecsXmlTranslator:
    name = "specs-xml"
    version = "1.0.0"
    description = "SPECS SpecsLab2 XML region files (.xml)"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        return best_score(paths, lambda p: 0.95 if _is_xml_file(p) else 0.0)

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        path = require_file(paths, _is_xml_file, "no SpecsLab2 XML file")
        if path.stat().st_size > MAX_BYTES:
            raise CorruptFile(f"{path.name}: larger than {MAX_BYTES} bytes")
        raw = text_start(path.read_bytes())
        if b"<!ENTITY" in raw:  # entity expansion is the XML bomb vector; SpecsLab never uses it
            raise CorruptFile(f"{path.name}: XML declares entities, which SpecsLab files never do")
        try:
            root = ET.fromstring(raw)
        except ET.ParseError as e:
            from translators.safeio import parse_until_root_end

            root = parse_until_root_end(raw, path.name)  # trailing bytes after the document
            if root is None:
                raise CorruptFile(f"{path.name}: XML is not well formed ({e}); truncated?") from None
        res = TranslationResult()
        c: dict[str, Any] = {}
        m = re.search(rb"<!--\s*(CORBA XML document created by [^>]*?)-->", raw[:1000])
        put(c, "software", text(m[1].decode("latin-1")) if m else None)
        regions = []
        for grp in root.iter("struct"):
            if grp.get("type_name") != "RegionGroup":
                continue
            gname = _child(grp, "string", "name")
            put(c, "group", text(gname))
            for rd in grp.iter("struct"):
                if rd.get("type_name") == "RegionData":
                    regions.append((gname, rd))
        if not regions:
            raise CorruptFile(f"{path.name}: no RegionData in the XML")
        c["number_of_regions"] = len(regions)
        res.constant = c
        orig = []
        for ri, (gname, rd) in enumerate(regions, start=1):
            v, meta, cols = _region(path.name, ri, rd)
            res.variable.append(v)
            orig.append(meta)
            if cols:
                tag = re.sub(r"[^A-Za-z0-9]+", "_", v.get("region_name", "")).strip("_")[:40]
                units = {k: ("eV" if "energy" in k else "counts") for k in cols}
                res.tables.append(Table(name=f"region{ri:02d}" + (f"_{tag}" if tag else ""),
                                        columns=cols, units=units))
                if res.preview is None:
                    res.preview = Preview(x=cols["binding energy"] if "binding energy" in cols else cols["kinetic energy"],
                                          y=cols["counts (sum of channels)"],
                                          x_label="binding energy (eV)" if "binding energy" in cols else "kinetic energy (eV)",
                                          y_label="counts", title=v.get("region_name", ""))
        res.original = {"regions": orig}
        return res


def _child(el: ET.Element, tag: str, name: str) -> str | None:
    for ch in el:
        if ch.tag == tag and ch.get("name") == name:
            return (ch.text or "").strip()
    return None


def _scalars(el: ET.Element, prefix: str = "") -> dict[str, str]:
    """Named scalar leaves of a struct, nested structs as 'outer/inner' (no sequences)."""
    out: dict[str, str] = {}
    for ch in el:
        n = ch.get("name")
        if not n:
            continue
        if ch.tag in _SCALAR:
            out[prefix + n] = (ch.text or "").strip()
        elif ch.tag == "struct":
            out.update(_scalars(ch, prefix + n + "/"))
    return out


def _region(fname: str, ri: int, rd: ET.Element) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    name = _child(rd, "string", "name") or f"region {ri}"
    reg = next((ch for ch in rd if ch.tag == "struct" and ch.get("name") == "region"), None)
    r = _scalars(reg) if reg is not None else {}
    top = _scalars(rd)
    ana = next((ch for ch in rd if ch.get("name") == "analyzer_info"), None)
    src = next((ch for ch in rd if ch.get("name") == "source_info"), None)
    shifts = [num(_child(d, "double", "shift")) or 0.0 for d in (ana.iter("struct") if ana is not None else [])
              if d.get("type_name") == "Detector"]
    params: dict[str, str] = {}
    if src is not None:
        for p in src.iter("struct"):
            if p.get("type_name") == "Parameter":
                pn = _child(p, "string", "name")
                val = next((x for x in p.iter() if x.tag in _SCALAR and x.get("name") is None), None)
                if pn and val is not None:
                    params[pn] = (val.text or "").strip()
    v: dict[str, Any] = {"region_name": text(name)}
    put(v, "analysis_method", text(r.get("analysis_method")))
    put(v, "analyser_lens", text(r.get("analyzer_lens")))
    put(v, "analyser_slit", text(r.get("analyzer_slit")))
    mode = text(r.get("scan_mode/name"))
    put(v, "scan_mode", MODES.get(mode or "", mode))
    for key, voc in (("num_scans", "number_of_scans"), ("curves_per_scan", "curves_per_scan"),
                     ("values_per_curve", "number_of_points")):
        put(v, voc, to_int(r.get(key)))
    for key, voc in (("dwell_time", "dwell_time"), ("scan_delta", "energy_step"),
                     ("excitation_energy", "excitation_energy"), ("kinetic_energy", "kinetic_energy_start"),
                     ("pass_energy", "pass_energy"), ("bias_voltage", "bias_voltage"),
                     ("detector_voltage", "detector_voltage"), ("effective_workfunction", "work_function")):
        put(v, voc, num(r.get(key)))
    put(v, "analyser", text(_child(ana, "string", "name")) if ana is not None else None)
    put(v, "source", text(_child(src, "string", "name")) if src is not None else None)
    put(v, "anode", text(params.get("Anode")))
    put(v, "number_of_detectors", len(shifts) or None)
    cycles = [cy for cy in rd.iter("struct") if cy.get("type_name") == "Cycle"]
    t0 = to_int(_child(cycles[0], "ulong", "time")) if cycles else None
    if t0:
        v["measured_at"] = datetime.fromtimestamp(t0, tz=timezone.utc).isoformat()
    if v.get("excitation_energy") is not None and v.get("kinetic_energy_start") is not None:
        v["binding_energy_start"] = round(v["excitation_energy"] - v["kinetic_energy_start"], 6)
    meta = {"name": name, "region": r, "top": top, "source_parameters": params,
            "detector_shifts": shifts}
    cols = _spectrum(fname, name, v, top, shifts, rd)
    return v, meta, cols


def _spectrum(fname: str, name: str, v: dict[str, Any], top: dict[str, str], shifts: list[float],
              rd: ET.Element) -> dict[str, Any]:
    n, delta, pe, ke = (v.get("number_of_points"), v.get("energy_step"), v.get("pass_energy"),
                        v.get("kinetic_energy_start"))
    head, tail = to_int(top.get("mcd_head")) or 0, to_int(top.get("mcd_tail")) or 0
    if not (n and delta and pe is not None and ke is not None and shifts):
        return {}
    ndet, steps = len(shifts), n + head + tail
    total = np.zeros(n)
    scans = 0
    for seq in rd.iter("sequence"):
        if seq.get("name") != "counts":
            continue
        declared = to_int(seq.get("length"))
        if declared != steps * ndet:
            raise CorruptFile(f"{fname}: region {name!r}: counts length {declared} is not "
                              f"(values {n} + mcd_head {head} + mcd_tail {tail}) x {ndet} channels")
        vals = " ".join((x.text or "") for x in seq.iter() if x is not seq).split()
        if len(vals) != declared:
            raise CorruptFile(f"{fname}: region {name!r}: counts sequence declares {declared} "
                              f"values but holds {len(vals)} (truncated file)")
        raw = np.asarray(vals, dtype=float).reshape(steps, ndet)
        k = np.arange(n)
        for j, s in enumerate(shifts):
            idx = k + head - int(round(s * pe / delta))
            ok = (idx >= 0) & (idx < steps)
            total[ok] += raw[idx[ok], j]
        scans += 1
    if not scans:
        return {}
    kin = np.round(ke + delta * np.arange(n), 9)
    cols: dict[str, Any] = {}
    if v.get("excitation_energy") is not None:
        cols["binding energy"] = np.round(v["excitation_energy"] - kin, 9)
    cols["kinetic energy"] = kin
    cols["counts (sum of channels)"] = total
    return cols
