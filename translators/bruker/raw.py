"""Bruker/Siemens DIFFRAC binary ``.raw``: RAW1.01 (DIFFRAC plus, "v3") and RAW4.00 (DIFFRAC.SUITE).

Layouts follow the DIFFRAC plus XCH manual appendix A (RAW1.01) and the public xylib notes for
RAW4.00. Every offset is bounds-checked: a truncated file yields the ranges read so far and a
warning, never a read past the end. Vendor keys are named as in those documents.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from translators.contract import CorruptFile, UnsupportedFile

FILE_HEADER_V3 = 712
MAX_RANGES = 10000


@dataclass
class RawRange:
    meta: dict[str, Any] = field(default_factory=dict)
    start: float = 0.0
    step: float = 0.0
    counts: np.ndarray | None = None


class _Reader:
    def __init__(self, data: bytes, name: str) -> None:
        self.data, self.name = data, name

    def need(self, off: int, n: int, what: str) -> None:
        if off < 0 or off + n > len(self.data):
            raise CorruptFile(f"{self.name}: ends at byte {len(self.data)} before {what} (bytes {off}-{off + n}); "
                              "the file is truncated")

    def u32(self, off: int, what: str) -> int:
        self.need(off, 4, what)
        return struct.unpack_from("<I", self.data, off)[0]

    def f32(self, off: int, what: str) -> float:
        self.need(off, 4, what)
        return struct.unpack_from("<f", self.data, off)[0]

    def f64(self, off: int, what: str) -> float:
        self.need(off, 8, what)
        return struct.unpack_from("<d", self.data, off)[0]

    def text(self, off: int, n: int, what: str) -> str:
        self.need(off, n, what)
        return self.data[off:off + n].split(b"\0", 1)[0].decode("latin-1").strip()


def _finite(v: float) -> float | None:
    return v if np.isfinite(v) and abs(v) < 1e30 else None


def parse_raw(data: bytes, name: str) -> tuple[dict[str, Any], list[RawRange], list[str]]:
    if data.startswith(b"RAW1.01"):
        return _parse_v3(data, name)
    if data.startswith(b"RAW4.00"):
        return _parse_v4(data, name)
    if data.startswith(b"RAW ") or data.startswith(b"RAW2"):
        raise UnsupportedFile(f"{name}: Siemens DIFFRAC-AT RAW version {'1' if data[3:4] == b' ' else '2'} "
                              "is not supported; convert it with DIFFRAC to RAW1.01 or BRML")
    raise UnsupportedFile(f"{name}: no RAW1.01/RAW4.00 signature; not a Bruker RAW file")


def _parse_v3(data: bytes, name: str) -> tuple[dict[str, Any], list[RawRange], list[str]]:
    r = _Reader(data, name)
    warnings: list[str] = []
    status = {1: "done", 2: "active", 3: "aborted", 4: "interrupted"}
    meta: dict[str, Any] = {"RAW_VERSION": "RAW1.01"}
    meta["FILE_STATUS"] = status.get(r.u32(8, "the file status"), "unknown")
    n_ranges = r.u32(12, "the range count")
    meta["RANGE_COUNT"] = n_ranges
    meta["MEASURE_DATE"] = r.text(16, 10, "the date")
    meta["MEASURE_TIME"] = r.text(26, 10, "the time")
    if meta["MEASURE_DATE"]:
        meta["MEASURE_DATETIME"] = f"{meta['MEASURE_DATE']} {meta['MEASURE_TIME']}".strip()
    meta["USER"] = r.text(36, 72, "the user")
    meta["SITE"] = r.text(108, 218, "the site")
    meta["SAMPLE_ID"] = r.text(326, 60, "the sample id")
    meta["COMMENT"] = r.text(386, 160, "the comment")
    r.need(0, FILE_HEADER_V3, "the end of the 712-byte file header")
    meta["GONIOMETER_RADIUS"] = _finite(r.f32(564, "the goniometer radius"))
    meta["ANODE_MATERIAL"] = r.text(608, 4, "the anode material")
    for key, off in (("ALPHA_AVERAGE", 616), ("ALPHA1", 624), ("ALPHA2", 632), ("BETA", 640), ("ALPHA_RATIO", 648)):
        meta[key] = _finite(r.f64(off, key))
    meta["MEASUREMENT_TIME"] = _finite(r.f32(664, "the measurement time"))
    if n_ranges > MAX_RANGES:
        raise CorruptFile(f"{name}: header claims {n_ranges} ranges (at most {MAX_RANGES} are plausible); damaged file")
    ranges: list[RawRange] = []
    off = FILE_HEADER_V3
    for i in range(n_ranges):
        if off >= len(data):
            warnings.append(f"{name}: header announces {n_ranges} ranges but the file ends after {i}")
            break
        hlen = r.u32(off, f"range {i + 1} header length")
        if not 256 <= hlen <= 65536:
            raise CorruptFile(f"{name}: range {i + 1} header length {hlen} is implausible (304 expected)")
        steps = r.u32(off + 4, f"range {i + 1} step count")
        rg = RawRange()
        rg.meta = {"STEPS": steps, "START_THETA": _finite(r.f64(off + 8, "start theta")),
                   "START_2THETA": _finite(r.f64(off + 16, "start 2theta")),
                   "START_CHI": _finite(r.f64(off + 24, "chi")), "START_PHI": _finite(r.f64(off + 32, "phi")),
                   "DETECTOR_HIGH_VOLTAGE": _finite(r.f32(off + 100, "detector HV")),
                   "STEP_SIZE": _finite(r.f64(off + 176, "step size")),
                   "TIME_PER_STEP": _finite(r.f32(off + 192, "time per step")),
                   "ROTATION_SPEED": _finite(r.f32(off + 208, "rotation speed")),
                   "GENERATOR_VOLTAGE": r.u32(off + 224, "generator voltage"),
                   "GENERATOR_CURRENT": r.u32(off + 228, "generator current"),
                   "USED_LAMBDA": _finite(r.f64(off + 240, "used wavelength"))}
        supp = r.u32(off + 256, f"range {i + 1} supplementary header size")
        rg.start = rg.meta["START_2THETA"] or 0.0
        rg.step = rg.meta["STEP_SIZE"] or 0.0
        if rg.meta["START_2THETA"] is not None and rg.step:
            rg.meta["STOP_2THETA"] = rg.start + rg.step * (steps - 1)
        dstart = off + hlen + supp
        avail = max(0, (len(data) - dstart) // 4)
        if steps > avail:
            warnings.append(f"{name}: range {i + 1} announces {steps} points but only {avail} are in the file "
                            "(truncated); the points present are kept")
        n = min(steps, avail)
        rg.counts = np.frombuffer(data, dtype="<f4", count=n, offset=dstart).astype(float) if n else np.empty(0)
        ranges.append(rg)
        off = dstart + steps * 4
    return meta, ranges, warnings


def _parse_v4(data: bytes, name: str) -> tuple[dict[str, Any], list[RawRange], list[str]]:
    r = _Reader(data, name)
    warnings: list[str] = []
    meta: dict[str, Any] = {"RAW_VERSION": "RAW4.00",
                            "MEASURE_DATE": r.text(12, 12, "the date"), "MEASURE_TIME": r.text(24, 10, "the time")}
    if meta["MEASURE_DATE"]:
        meta["MEASURE_DATETIME"] = f"{meta['MEASURE_DATE']} {meta['MEASURE_TIME']}".strip()
    off = 61
    seg = -1
    while off + 4 <= len(data):
        seg = r.u32(off, "a segment type")
        if seg in (0, 160):
            break
        slen = r.u32(off + 4, f"segment {seg} length")
        if slen < 8 or off + slen > len(data):
            raise CorruptFile(f"{name}: metadata segment type {seg} at byte {off} has length {slen}, "
                              "past the end of the file; damaged or truncated")
        if seg == 10 and slen >= 36:  # VarInfo: tag name and its text value
            meta[r.text(off + 12, 24, "a tag name") or f"VARINFO_{off}"] = r.text(off + 36, slen - 36, "a tag value")
        elif seg == 30 and slen >= 120:  # hardware configuration
            for key, o in (("ALPHA_AVERAGE", 72), ("ALPHA1", 80), ("ALPHA2", 88), ("BETA", 96), ("ALPHA_RATIO", 104)):
                meta[key] = _finite(r.f64(off + o, key))
            meta["ANODE_MATERIAL"] = r.text(off + 116, 4, "the anode material")
        off += slen
    ranges: list[RawRange] = []
    while seg in (0, 160) and off + 160 <= len(data) and len(ranges) < MAX_RANGES:
        rg = RawRange()
        rg.meta = {"SCAN_TYPE": r.text(off + 32, 24, "the scan type"),
                   "START_ANGLE": _finite(r.f64(off + 72, "the start angle")),
                   "STEP_SIZE": _finite(r.f64(off + 80, "the step size")),
                   "STEPS": r.u32(off + 88, "the step count"),
                   "TIME_PER_STEP": _finite(r.f32(off + 92, "the time per step")),
                   "GENERATOR_VOLTAGE": _finite(r.f32(off + 100, "the generator voltage")),
                   "GENERATOR_CURRENT": _finite(r.f32(off + 104, "the generator current")),
                   "USED_LAMBDA": _finite(r.f64(off + 112, "the used wavelength"))}
        datum = r.u32(off + 136, "the datum size")
        extra = r.u32(off + 140, "the range header size")
        rg.start, rg.step = rg.meta["START_ANGLE"] or 0.0, rg.meta["STEP_SIZE"] or 0.0
        steps = rg.meta["STEPS"]
        dstart = off + 160 + extra
        aux = None
        if datum not in (4, 8):
            warnings.append(f"{name}: range {len(ranges) + 1} has {datum}-byte data points; only 4- and 8-byte "
                            "points are read, so this range keeps its metadata only")
            n = 0
        else:
            n = min(steps, max(0, (len(data) - dstart) // datum))
            if n < steps:
                warnings.append(f"{name}: range {len(ranges) + 1} announces {steps} points, {n} present (truncated)")
        if rg.meta["SCAN_TYPE"] not in ("Locked Coupled", "Unlocked Coupled", ""):
            warnings.append(f"{name}: range {len(ranges) + 1} scan type {rg.meta['SCAN_TYPE']!r} is read as a "
                            "plain start/step scan; check the x axis")
        if datum == 8 and n:
            # DIFFRAC.EVA writes 8-byte points: a float32 intensity and a uint32 beside it
            pts = np.frombuffer(data, dtype=[("counts", "<f4"), ("aux", "<u4")], count=n, offset=dstart)
            rg.counts = pts["counts"].astype(float)
            aux = np.unique(pts["aux"])
            rg.meta["DATUM_SIZE"] = 8
            rg.meta["DATUM_AUX_VALUES"] = [int(v) for v in aux[:8]]
            if len(aux) > 1:
                warnings.append(f"{name}: range {len(ranges) + 1}: the second word of its 8-byte points varies "
                                f"({len(aux)} values); only the float intensity is used")
            ranges.append(rg)
            off = dstart + steps * datum
            seg = r.u32(off, "the next range") if off + 4 <= len(data) else -1
            continue
        rg.counts = np.frombuffer(data, dtype="<f4", count=n, offset=dstart).astype(float) if n else np.empty(0)
        ranges.append(rg)
        off = dstart + steps * max(datum, 1)
        seg = r.u32(off, "the next range") if off + 4 <= len(data) else -1
    if not ranges:
        warnings.append(f"{name}: RAW4.00 file holds no measurement range that could be read")
    return meta, ranges, warnings
