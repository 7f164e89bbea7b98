"""SpecsLab Prodigy XY export (.xy): "# Key: value" comments per region, then x/y blocks.

Each "# Region:" starts a region header; each "# Cycle: c, Curve: k[, Scan: s][, Channel: n]"
starts a data block of Values/Curve rows of "energy intensity".
"""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators.safeio import decode_text as _detect_text, read_text_head, without_trailing_junk
from translators.common import best_score, num, put, require_file, text, to_int
from translators.contract import CorruptFile, Preview, Table, TranslationResult, load_vocabulary
from translators.specs.common import MODES

MAX_BYTES = 512 * 1024 * 1024
_KV = re.compile(r"^#\s*([^:]+?):\s*(.*)$")
_BLOCK = re.compile(r"^#\s*Cycle:\s*(\d+)\s*,\s*Curve:\s*(\d+)(?:\s*,\s*Scan:\s*(\d+))?(?:\s*,\s*Channel:\s*(\d+))?", re.I)
_REG = {"Region": "region_name", "Analysis Method": "analysis_method", "Analyzer": "analyser",
        "Analyzer Lens": "analyser_lens", "Analyzer Slit": "analyser_slit", "Source": "source",
        "Comment": "comment"}
_REG_NUM = {"Dwell Time": "dwell_time", "Excitation Energy": "excitation_energy",
            "Binding Energy": "binding_energy_start", "Kinetic Energy": "kinetic_energy_start",
            "Pass Energy": "pass_energy", "Bias Voltage": "bias_voltage",
            "Detector Voltage": "detector_voltage", "Eff. Workfunction": "work_function"}
_REG_INT = {"Spectrum ID": "spectrum_id", "Curves/Scan": "curves_per_scan",
            "Values/Curve": "number_of_points", "Number of Scans": "number_of_scans"}


def _is_xy(head: bytes) -> bool:
    return head.startswith(b"# Created by:") and b"SpecsLab Prodigy" in head[:200] or \
        (head.startswith(b"#") and b"XY-Serializer Export Settings" in head[:1500])


def _is_xy_file(p: Path) -> bool:
    return _is_xy(read_text_head(p, 2048))


class SpecsXyTranslator:
    name = "specs-xy"
    version = "1.0.0"
    description = "SPECS SpecsLab Prodigy XY exports (.xy)"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        return best_score(paths, lambda p: 0.95 if _is_xy_file(p) else 0.0)

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        path = require_file(paths, _is_xy_file, "no SpecsLab Prodigy XY export "
                            "(expected '# Created by: SpecsLab Prodigy')")
        if path.stat().st_size > MAX_BYTES:
            raise CorruptFile(f"{path.name}: larger than {MAX_BYTES} bytes")
        lines = without_trailing_junk(_detect_text(path.read_bytes(), where=path.name)[0].lstrip("\ufeff"), path.name).splitlines()
        file_hdr: dict[str, str] = {}
        regions: list[dict[str, Any]] = []
        group = None
        cur: dict[str, Any] | None = None
        block: dict[str, Any] | None = None
        for k, ln in enumerate(lines, start=1):
            s = ln.strip()
            if not s:
                continue
            if s.startswith("#"):
                b = _BLOCK.match(s)
                if b and cur is not None:
                    block = {"id": s.lstrip("# ").strip(), "rows": [], "line": k, "meta": {}}
                    cur["blocks"].append(block)
                    continue
                m = _KV.match(s)
                if not m:
                    continue
                key, val = m[1].strip(), m[2].strip()
                if key == "Region":
                    cur = {"meta": {"Region": val, "Group": group}, "blocks": []}
                    regions.append(cur)
                    block = None
                elif key == "Group":
                    group = val
                elif block is not None:
                    block["meta"][key] = val
                elif cur is not None:
                    cur["meta"][key] = val
                else:
                    file_hdr[key] = val
                continue
            if block is None:
                raise CorruptFile(f"{path.name}: line {k}: data row before any '# Cycle: .., Curve: ..' header")
            parts = s.split()
            try:
                block["rows"].append([float(x) for x in parts])
            except ValueError:
                raise CorruptFile(f"{path.name}: line {k}: data row is not numeric: {s[:60]!r}") from None
            if len(parts) < 2:
                raise CorruptFile(f"{path.name}: line {k}: data row needs energy and intensity")
        if not regions:
            raise CorruptFile(f"{path.name}: no '# Region:' section found")
        res = TranslationResult(original={"file": file_hdr,
                                          "regions": [{"meta": r["meta"], "blocks": [
                                              {"id": b["id"], "meta": b["meta"], "rows": len(b["rows"])}
                                              for b in r["blocks"]]} for r in regions]})
        c: dict[str, Any] = {}
        put(c, "software", text(file_hdr.get("Created by")))
        put(c, "energy_axis", text(file_hdr.get("Energy Axis")))
        # Prodigy writes "Count Rate: Counts per Second"; SpecsLab2 writes "Counts Per Second: yes"
        cps_flag = (file_hdr.get("Counts Per Second") or "").strip().lower()
        rate = file_hdr.get("Count Rate") or ({"yes": "Counts per Second", "no": "Counts"}.get(cps_flag))
        put(c, "intensity_mode", text(rate))
        put(c, "group", text(regions[0]["meta"].get("Group")))
        c["number_of_regions"] = len(regions)
        res.constant = c
        # Prodigy: "Energy Axis: Binding Energy"; SpecsLab2: "Kinetic Energy Axis: no" (+ "values in binding energy")
        axis = (file_hdr.get("Energy Axis") or "").lower()
        ke_flag = (file_hdr.get("Kinetic Energy Axis") or "").strip().lower()
        binding = "binding" in axis or ke_flag == "no" or any(
            ln.strip().lstrip("#").strip().lower() == "values in binding energy" for ln in lines[:200])
        xname = "binding energy" if binding else "kinetic energy"
        if not axis and ke_flag:
            put(c, "energy_axis", "Binding Energy" if binding else "Kinetic Energy")
        yunit = "counts/s" if "second" in (rate or "").lower() else "counts"
        res.used_keys = ["file/" + k for k in ("Created by", "Energy Axis", "Count Rate", "Counts Per Second",
                                                 "Kinetic Energy Axis")]
        res.used_keys += [f"regions/{i}/meta/{k}" for i in range(len(regions))
                          for k in (*_REG, *_REG_NUM, *_REG_INT, "Scan Mode", "Acquisition Date", "Group")]
        for ri, r in enumerate(regions, start=1):
            v = _variable(r["meta"], r["blocks"], res.warnings, path.name)
            res.variable.append(v)
            npts = v.get("number_of_points")
            cols: dict[str, Any] = {}
            units: dict[str, str | None] = {}
            for b in r["blocks"]:
                width = min((len(x) for x in b["rows"]), default=2)
                rows = np.asarray([x[:width] for x in b["rows"]], dtype=float).reshape(-1, max(2, width))
                if npts is not None and rows.shape[0] != npts:
                    raise CorruptFile(f"{path.name}: line {b['line']}: block '{b['id']}' has "
                                      f"{rows.shape[0]} rows but Values/Curve is {npts} (truncated file)")
                if not cols:
                    cols[xname], units[xname] = rows[:, 0], "eV"
                    if len(rows) > 1:
                        put(v, "energy_step", round(abs(float(rows[1, 0] - rows[0, 0])), 9))
                elif len(rows) != len(cols[xname]):
                    continue  # a block on another axis stays in raw/ only
                tag = re.sub(r"[^A-Za-z0-9]+", " ", b["id"]).strip().lower()
                cols[tag], units[tag] = rows[:, 1], yunit
                labels = (b["meta"].get("ColumnLabels") or r["meta"].get("ColumnLabels") or "").split()
                for j in range(2, rows.shape[1]):  # e.g. the transmission function column
                    extra = f"{tag} {labels[j] if j < len(labels) else f'column {j + 1}'}"
                    cols[extra], units[extra] = rows[:, j], None
            if not cols:
                raise CorruptFile(f"{path.name}: region {r['meta'].get('Region')!r} has no data "
                                  "block (truncated file)")
            tag = re.sub(r"[^A-Za-z0-9]+", "_", str(r["meta"].get("Region", ""))).strip("_")[:40]
            res.tables.append(Table(name=f"region{ri:02d}" + (f"_{tag}" if tag else ""),
                                    columns=cols, units=units))
            if res.preview is None and len(cols) > 1:
                ys = [n for n in cols if n != xname]
                res.preview = Preview(x=cols[xname], y=cols[ys[0]], x_label=f"{xname} (eV)",
                                      y_label=f"intensity ({yunit})", title=str(r["meta"].get("Region", "")))
        return res


def _variable(meta: dict[str, str], blocks: list[dict[str, Any]], warnings: list[str],
              name: str) -> dict[str, Any]:
    v: dict[str, Any] = {}
    for key, voc in _REG.items():
        put(v, voc, text(meta.get(key)))
    for key, voc in _REG_NUM.items():
        put(v, voc, num(meta.get(key)))
    for key, voc in _REG_INT.items():
        put(v, voc, to_int(meta.get(key)))
    if "number_of_scans" not in v:
        scans = {b["id"] for b in blocks}
        put(v, "number_of_scans", len(scans) if scans else None)
    mode = text(meta.get("Scan Mode"))
    put(v, "scan_mode", MODES.get(mode or "", mode))
    when = text(meta.get("Acquisition Date"))
    if when:
        m = re.match(r"(\d{2})/(\d{2})/(\d{2,4})\s+(\d{1,2}):(\d{2}):(\d{2})\s*(UTC)?", when)
        if m:
            y = int(m[3]) + (2000 if len(m[3]) == 2 else 0)
            try:
                dt = datetime(y, int(m[1]), int(m[2]), int(m[4]), int(m[5]), int(m[6]))
                v["measured_at"] = dt.isoformat() + ("+00:00" if m[7] else "")
            except ValueError as exc:
                warnings.append(f"{name}: region {meta.get('Region')!r}: Acquisition Date {when!r} is not a "
                                f"calendar date ({exc}); kept verbatim in original_metadata.json")
        else:
            warnings.append(f"{name}: region {meta.get('Region')!r}: Acquisition Date {when!r} is not in "
                            "the form MM/DD/YY HH:MM:SS; kept verbatim in original_metadata.json")
    return v
