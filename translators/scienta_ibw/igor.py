"""A bounded reader for Igor Pro binary waves (``.ibw``, versions 2 and 5, little or big endian).

Version 5 (Igor 5+): a 64-byte BinHeader5 (sizes of the wave, formula, note, extended data
units, dimension units and labels), a 320-byte WaveHeader5 (point count, type, name, dimension
sizes nDim[4], scaling sfA/sfB), the data, then formula, note and the extended units.
Version 2: a 16-byte BinHeader2 and a 110-byte WaveHeader2 (1-D only), data, 16 bytes, note.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from translators.contract import CorruptFile

_TYPES = {2: "f4", 4: "f8", 8: "i1", 16: "i2", 32: "i4", 0x48: "u1", 0x50: "u2", 0x60: "u4"}


@dataclass
class Wave:
    version: int
    name: str
    data: Any
    dims: list[int]
    sf_a: list[float]
    sf_b: list[float]
    data_units: str = ""
    dim_units: list[str] = field(default_factory=list)
    note: str = ""


def read_ibw(b: bytes, where: str) -> Wave:
    if len(b) < 8:
        raise CorruptFile(f"{where}: too short for an Igor binary wave")
    (ver,) = struct.unpack_from("<h", b, 0)
    end = "<"
    if ver not in (2, 5):
        (ver,) = struct.unpack_from(">h", b, 0)
        end = ">"
    if ver not in (2, 5):
        raise CorruptFile(f"{where}: Igor binary wave version {ver} is not supported (2 and 5 are)")

    def unpack(fmt: str, off: int) -> tuple[Any, ...]:
        n = struct.calcsize(end + fmt)
        if off + n > len(b):
            raise CorruptFile(f"{where}: truncated Igor wave (needs {n} bytes at {off}, the file has {len(b)})")
        return struct.unpack_from(end + fmt, b, off)

    if ver == 5:
        _, _, wfm, formula, note, deu = unpack("hhiiii", 0)
        dimeu = list(unpack("4i", 20))
        wh = 64
        npnts, typ = unpack("ih", wh + 12)
        name = b[wh + 28:wh + 60].split(b"\0", 1)[0].decode("latin-1")
        dims = [d for d in unpack("4i", wh + 68)]
        sf_a, sf_b = list(unpack("4d", wh + 84)), list(unpack("4d", wh + 116))
        units4 = b[wh + 148:wh + 152].split(b"\0", 1)[0].decode("latin-1")
        dim4 = [b[wh + 152 + 4 * i:wh + 156 + 4 * i].split(b"\0", 1)[0].decode("latin-1") for i in range(4)]
        data_off = wh + 320
        after = 64 + wfm + max(0, formula)
    else:
        _, wfm, note, _pict = unpack("hiii", 0)
        deu, dimeu = 0, [0, 0, 0, 0]
        wh = 16
        typ, = unpack("h", wh)
        name = b[wh + 6:wh + 38].split(b"\0", 1)[0].decode("latin-1")
        units4 = b[wh + 42:wh + 46].split(b"\0", 1)[0].decode("latin-1")
        dim4 = [b[wh + 46:wh + 50].split(b"\0", 1)[0].decode("latin-1"), "", "", ""]
        (npnts,) = unpack("i", wh + 66)
        hs_a, hs_b = unpack("dd", wh + 74)
        sf_a, sf_b = [hs_a, 1.0, 1.0, 1.0], [hs_b, 0.0, 0.0, 0.0]
        dims = [npnts, 0, 0, 0]
        data_off = wh + 110
        after = 16 + wfm + 16
    kind = _TYPES.get(typ & ~1)
    if kind is None or typ & 1:
        raise CorruptFile(f"{where}: Igor wave type {typ:#x} is not supported (real numbers only)")
    dt = np.dtype(end + kind)
    if npnts < 0 or data_off + npnts * dt.itemsize > len(b):
        raise CorruptFile(f"{where}: the wave declares {npnts} points, more than the file holds (truncated)")
    data = np.frombuffer(b, dt, npnts, data_off).astype(float)
    shape = [d for d in dims if d > 0]
    if shape and int(np.prod(shape)) == npnts and len(shape) > 1:
        data = data.reshape(shape[::-1]).T  # Igor stores column-major
    wave = Wave(ver, name, data, dims, sf_a, sf_b)
    pos = after
    wave.note = b[pos:pos + max(0, note)].decode("latin-1") if pos < len(b) else ""
    pos += max(0, note)
    wave.data_units = b[pos:pos + max(0, deu)].decode("latin-1") if deu > 0 else units4
    pos += max(0, deu)
    for i in range(4):
        n = max(0, dimeu[i])
        wave.dim_units.append(b[pos:pos + n].decode("latin-1") if n else dim4[i])
        pos += n
    return wave
