"""ULVAC-PHI MultiPak/SmartSoft spectrum files (.spe): XPS (Quantera, VersaProbe) and AES.

An ASCII header between "SOFH" and "EOFH" ("Key: value [unit]" lines, SpectralRegDef lines
holding points/step/start/end/dwell/pass energy per region) followed by a binary part: a
uint32 spectrum count, one 24 x uint32 header per spectrum (points at 8, scans at 9, the
data type tag at 21, byte length at 22, offset at 23) and little-endian float data.
"""
from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators import progress
from translators.safeio import decode_text as _detect_text, read_text_head, text_start
from translators.common import best_score, require_file, text
from translators.contract import CorruptFile, Preview, Table, TranslationResult, load_vocabulary

__all__ = ["PhiSpeTranslator"]

MAX_BYTES = 512 * 1024 * 1024
_HDR_WORDS = 24
_MODES = {"FAT": "fixed analyser transmission (FAT)", "FRR": "fixed retard ratio (FRR)"}
# header key -> (vocabulary key, unit we store, {unit written in file: factor})
_NUM = {
    "AnalyserWorkFcn": ("work_function", {"ev": 1.0, "": 1.0}),
    "XrayPower": ("xray_power", {"w": 1.0, "": 1.0}),
    "XrayBeamDiameter": ("xray_beam_diameter", {"um": 1.0, "": 1.0, "mm": 1e3}),
    "XRayBeamVoltage": ("xray_beam_voltage", {"v": 1e-3, "kv": 1.0}),
    "EBeamEnergy": ("ebeam_energy", {"kev": 1.0, "ev": 1e-3, "": 1.0}),
    "EBeamCurrent": ("ebeam_current", {"a": 1.0, "na": 1e-9, "ua": 1e-6}),
    "SourceAnalyserAngle": ("source_analyser_angle", {"d": 1.0, "deg": 1.0, "": 1.0}),
    "AnalyserSolidAngle": ("analyser_solid_angle", {"sr": 1.0, "": 1.0}),
    "NeutralizerCurrent": ("neutraliser_current", {"ua": 1.0, "na": 1e-3}),
    "NeutralizerEnergy": ("neutraliser_energy", {"v": 1.0, "ev": 1.0}),
    "SputterEnergy": ("sputter_energy", {"kv": 1.0, "v": 1e-3}),
    "Detector Acq Time": ("total_acquisition_time", {"(min)": 60.0, "min": 60.0, "s": 1.0}),
}
_STR = {"Technique": "technique", "FileType": "file_type", "InstrumentModel": "instrument_model",
        "SoftwareVersion": "software", "Institution": "institution", "Operator": "operator",
        "ExperimentID": "experiment_id", "XRaySetting": "xray_setting", "XpsScanMode": "scan_mode",
        "EgunNeutMode": "neutraliser_mode", "SputterIon": "sputter_ion",
        "IonGunMode": "ion_gun_mode", "StagePosition": "stage_position"}


def _split(raw: bytes, name: str) -> tuple[list[str], bytes]:
    raw = text_start(raw)  # a BOM or blank lines before SOFH
    m = re.search(rb"EOFH\r?\n", raw)
    if not raw.startswith(b"SOFH") or m is None:
        raise CorruptFile(f"{name}: no 'EOFH' end-of-header marker (truncated PHI file)")
    text = _detect_text(raw[:m.start()], where=name)[0]
    return [ln.strip() for ln in text.splitlines() if ln.strip()], raw[m.end():]


def _score(p: Path) -> float:
    h = read_text_head(p, 65536)
    if not h.startswith(b"SOFH"):
        return 0.0
    return 0.97 if b"EOFH" in h or b"Technique:" in h else 0.7


def _starts_sofh(p: Path) -> bool:
    return read_text_head(p, 4) == b"SOFH"


class PhiSpeTranslator:
    name = "phi-spe"
    version = "1.0.0"
    description = "ULVAC-PHI MultiPak/SmartSoft .spe spectra (XPS and AES)"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        return best_score(paths, _score)

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        path = require_file(paths, _starts_sofh, "no PHI file (must start with 'SOFH')")
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise CorruptFile(f"{path.name}: {size} bytes exceeds the {MAX_BYTES} byte limit")
        lines, binary = _split(path.read_bytes(), path.name)
        header: dict[str, Any] = {}
        for ln in lines[1:]:
            k, sep, v = ln.partition(":")
            if not sep:
                continue
            k, v = k.strip(), v.strip()
            if k in header:  # repeated keys (SpectralRegDef per region): keep all, in order
                header[k] = header[k] if isinstance(header[k], list) else [header[k]]
                header[k].append(v)
            else:
                header[k] = v
        res = TranslationResult(original={"header": header})
        res.constant = _constant(header)
        tech = str(header.get("Technique", "")).upper()
        regions = [_region(path.name, d) for d in _as_list(header.get("SpectralRegDef"))]
        n_areas = _int(header.get("NoSpatialArea")) or 1
        ftype = str(header.get("FileType", "SPECTRUM")).strip().upper()
        progress.header_read(res.original, res.constant)
        if ftype == "DEPTHPRO":
            return _depth_profile(path.name, binary, regions, tech, res)
        if ftype != "SPECTRUM":
            res.warnings.append(f"{path.name}: FileType {header.get('FileType')!r}: header "
                                "translated, binary data left in raw/ (SPECTRUM and DEPTHPRO are decoded)")
            return res
        specs = _binary(path.name, binary, len(regions) * n_areas)
        k = 0
        for r in regions:
            for area in range(1, n_areas + 1):
                spec = specs[k]
                k += 1
                res.variable.append(_variable(r, area, spec, tech))
                x = np.round(r["start"] + r["step"] * np.arange(spec["n"]), 6)
                xname = "binding energy" if tech.startswith("XPS") else "kinetic energy"
                cols: dict[str, Any] = {xname: x}
                units: dict[str, str | None] = {xname: "eV"}
                for s, y in enumerate(spec["scans"], start=1):
                    cname = "intensity" if len(spec["scans"]) == 1 else f"intensity scan {s}"
                    cols[cname], units[cname] = y, spec["unit"]
                tag = re.sub(r"[^A-Za-z0-9]+", "_", r["name"]).strip("_")
                res.tables.append(Table(name=f"region{r['index']:02d}_{tag}_area{area}",
                                        columns=cols, units=units))
                if res.preview is None:
                    res.preview = Preview(x=x, y=spec["scans"][0], x_label=f"{xname} (eV)",
                                          y_label=f"intensity ({spec['unit'] or 'a.u.'})",
                                          title=f"{r['name']} {tech}")
        return res


def _depth_profile(name: str, binary: bytes, regions: list[dict[str, Any]], tech: str,
                   res: TranslationResult) -> TranslationResult:
    """Spectra per region and cycle (HDF5), the profile (sputter time vs intensity, CSV), a plot."""
    from translators.contract import Array
    from translators.phi_spe.depth import read_entries

    entries = read_entries(name, binary)
    spectral = [e for e in entries if e["axes"][0] == "pnt"]
    per_cycle = {e["unit"]: e for e in entries if e["axes"] == ("cyc", "reg")}
    by_index = {r["index"]: r for r in regions}
    xname = "binding energy" if tech.startswith("XPS") else "kinetic energy"
    for e in spectral:
        r = by_index.get(e["region"]) or (regions[len(res.variable)] if len(res.variable) < len(regions) else None)
        if r is None:
            res.warnings.append(f"{name}: depth-profile entry for region {e['region']} has no SpectralRegDef")
            continue
        v = _variable(r, 1, {"n": e["n"], "nscans": e["m"], "unit": e["unit"]}, tech)
        v.pop("number_of_scans", None)
        v["number_of_cycles"] = e["m"]
        res.variable.append(v)
        tag = re.sub(r"[^A-Za-z0-9]+", "_", r["name"]).strip("_")
        res.arrays.append(Array(f"region{r['index']:02d}_{tag}", e["data"],
                                {"region": r["name"], "unit": e["unit"] or "", "dims": "cycle, point"},
                                {xname: {"offset": r["start"], "scale": r["step"], "unit": "eV"}}))
    times = per_cycle.get("s")
    prof = per_cycle.get("c/s") or next((e for k, e in per_cycle.items() if k != "s"), None)
    if prof is not None:
        names = [r["name"] for r in regions][:prof["m"]]
        cycles = np.arange(prof["n"], dtype=float)
        x = times["data"][0] if times is not None and times["n"] == prof["n"] else cycles
        cols: dict[str, Any] = {"cycle": cycles}
        units: dict[str, str | None] = {"cycle": None}
        if times is not None:
            cols["sputter time"], units["sputter time"] = x, "s"
        for j, nm in enumerate(names):
            cols[nm], units[nm] = prof["data"][j], prof["unit"]
        res.tables.append(Table(name="depth_profile", columns=cols, units=units))
        res.preview = Preview(x=x, y=[prof["data"][j] for j in range(len(names))],
                              x_label="sputter time (s)" if times is not None else "cycle",
                              y_label=f"intensity ({prof['unit'] or 'a.u.'})", title=f"{tech} depth profile")
    else:
        res.warnings.append(f"{name}: no per-cycle profile entry; the spectra are in the HDF5 file")
    if spectral and res.preview is None:
        e = spectral[0]
        res.preview = Preview(image=e["data"], title="cycle x energy")
    res.constant["number_of_cycles"] = spectral[0]["m"] if spectral else None
    if res.constant["number_of_cycles"] is None:
        del res.constant["number_of_cycles"]
    return res


def _as_list(v: Any) -> list[str]:
    return [] if v is None else v if isinstance(v, list) else [v]


def _int(v: Any) -> int | None:
    try:
        return int(str(v).split()[0])
    except (ValueError, IndexError, TypeError):
        return None


def _first_num(v: Any) -> tuple[float | None, str]:
    m = re.match(r"\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*(\S*)", str(v or ""))
    return (float(m[1]), m[2]) if m else (None, "")


def _s(v: Any) -> str | None:
    """Header text; of a repeated key the last occurrence wins."""
    return text(v[-1] if isinstance(v, list) else v)


def _constant(h: dict[str, Any]) -> dict[str, Any]:
    c: dict[str, Any] = {}
    for key, voc in _STR.items():
        if _s(h.get(key)) and voc not in c:
            c[voc] = _s(h[key])
    for key, (voc, factors) in _NUM.items():
        val, unit = _first_num(h.get(key))
        f = factors.get(unit.lower())
        if val is not None and f is not None and voc not in c:
            c[voc] = round(val * f, 12)
    mode = _s(h.get("AnalyserMode"))
    if mode:
        c["analyser_mode"] = _MODES.get(mode, mode)
    d = str(h.get("AcqFileDate") or h.get("FileDate") or "").split()
    if len(d) == 3 and all(x.isdigit() for x in d):
        y = int(d[0]) + (1900 if int(d[0]) < 1000 else 0)  # some AES builds write tm_year (117)
        c["acquisition_date"] = f"{y:04d}-{int(d[1]):02d}-{int(d[2]):02d}"
    fn = _s(h.get("AcqFilename"))
    if fn:
        c["acquisition_file"] = fn.replace("\\", "/").rsplit("/", 1)[-1]
    src = _s(h.get("XraySource"))
    if src:
        parts = src.split()
        e = _first_num(parts[1])[0] if len(parts) > 1 else None
        el = parts[0]
        c["excitation_source"] = (f"{el} Kα" if el in ("Al", "Mg", "Ag", "Cr") else el) + \
            (" (monochromated)" if "mono" in src.lower() else "")
        if e is not None:
            c["source_energy"] = e
    for key, voc in (("NoSpectralReg", "number_of_regions"), ("NoSpatialArea", "number_of_areas")):
        if _int(h.get(key)) is not None:
            c[voc] = _int(h[key])
    return c


def _region(name: str, d: str) -> dict[str, Any]:
    f = d.split()
    try:
        return {"index": int(f[0]), "name": f[2], "z": int(f[3]), "n": int(f[4]),
                "step": float(f[5]), "start": float(f[6]), "end": float(f[7]),
                "dwell": float(f[-3]), "pe": float(f[-2]), "raw": d}
    except (ValueError, IndexError):
        raise CorruptFile(f"{name}: SpectralRegDef line {d[:60]!r} does not have the expected "
                          "'index flag name Z points step start end ... dwell passenergy unit' "
                          "fields") from None


def _binary(name: str, b: bytes, expected: int) -> list[dict[str, Any]]:
    if len(b) < 4:
        raise CorruptFile(f"{name}: binary part is missing (truncated after the header)")
    (count,) = struct.unpack_from("<I", b, 0)
    if count != expected:
        raise CorruptFile(f"{name}: binary part holds {count} spectra, header describes "
                          f"{expected} (regions x areas)")
    if 4 + count * _HDR_WORDS * 4 > len(b):
        raise CorruptFile(f"{name}: binary spectrum headers are truncated")
    out = []
    for i in range(count):
        w = struct.unpack_from(f"<{_HDR_WORDS}I", b, 4 + i * _HDR_WORDS * 4)
        n, scans, length, start = w[8], w[9], w[22], w[23]
        tag = struct.pack("<I", w[21]).rstrip(b"\0").decode("latin-1")
        unit = struct.pack("<I", w[17]).rstrip(b"\0").decode("latin-1") or None
        dtype = {"f4": "<f4", "f8": "<f8"}.get(tag)
        if dtype is None:
            raise CorruptFile(f"{name}: spectrum {i + 1}: data type tag {tag!r} is not f4/f8")
        item = np.dtype(dtype).itemsize
        # Check declared sizes against the file before allocating anything.
        if scans < 1 or n < 1 or n * scans * item > length or start + length > len(b):
            raise CorruptFile(f"{name}: spectrum {i + 1}: declares {n} points x {scans} scans "
                              f"({length} bytes at offset {start}) but the binary part has "
                              f"{len(b)} bytes (truncated or damaged)")
        data = np.frombuffer(b, dtype=dtype, count=n * scans, offset=start).astype(float)
        out.append({"n": n, "nscans": scans, "unit": unit,
                    "scans": [data[s * n:(s + 1) * n] for s in range(scans)]})
    return out


def _variable(r: dict[str, Any], area: int, spec: dict[str, Any], tech: str) -> dict[str, Any]:
    v: dict[str, Any] = {"region_name": r["name"], "atomic_number": r["z"], "area": area,
                         "energy_scale": "binding energy" if tech.startswith("XPS") else "kinetic energy",
                         "energy_start": r["start"], "energy_end": r["end"],
                         "energy_step": abs(r["step"]), "number_of_points": spec["n"],
                         "dwell_time": r["dwell"], "number_of_scans": spec["nscans"]}
    if r["pe"] > 0:
        v["pass_energy"] = r["pe"]
    if spec["unit"]:
        v["intensity_unit"] = spec["unit"]
    if spec["n"] != r["n"]:
        v["number_of_points"] = spec["n"]  # binary wins; the header count is in `original`
    return v
