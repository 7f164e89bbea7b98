"""A bounded reader for FEI TIA ``.ser`` series files (SER versions 0x0210 and 0x0220).

Layout (little-endian): header (byte order 0x4949, series id 0x0197, version, data type
0x4120 = 1-D spectra or 0x4122 = 2-D images, tag type, total/valid element counts, offset-array
offset: 4 bytes in 0x0210, 8 in 0x0220, number of dimensions), one record per series dimension
(size, calibration offset/delta/element, description, units), then the data-offset and
tag-offset arrays, and each element (its own calibration, data type, size, values).
Every offset and size is checked against the file, so a damaged file ends in CorruptFile.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from translators.contract import CorruptFile

DTYPES = {1: "<u1", 2: "<u2", 3: "<u4", 4: "<i1", 5: "<i2", 6: "<i4", 7: "<f4", 8: "<f8", 9: "<c8", 10: "<c16"}
MAX_ELEMENTS = 1 << 24


@dataclass
class Dimension:
    size: int
    offset: float
    delta: float
    element: int
    description: str
    units: str


@dataclass
class SerFile:
    version: int
    data_type: int  # 0x4120 spectra, 0x4122 images
    tag_type: int
    total: int
    valid: int
    dimensions: list[Dimension] = field(default_factory=list)
    calibration: dict[str, Any] = field(default_factory=dict)  # of the first element
    data: Any = None  # numpy array: (elements, channels) or (elements, h, w)

    def header(self) -> dict[str, Any]:
        return {"SeriesVersion": hex(self.version), "DataTypeID": hex(self.data_type), "TagTypeID": hex(self.tag_type),
                "TotalNumberElements": self.total, "ValidNumberElements": self.valid,
                "Dimensions": [d.__dict__ for d in self.dimensions], "FirstElement": self.calibration}


class _Buf:
    def __init__(self, data: bytes, name: str) -> None:
        self.b, self.name = data, name

    def unpack(self, fmt: str, off: int) -> tuple[Any, ...]:
        n = struct.calcsize(fmt)
        if off < 0 or off + n > len(self.b):
            raise CorruptFile(f"{self.name}: truncated SER file (needs {n} bytes at offset {off}, "
                              f"the file has {len(self.b)})")
        return struct.unpack_from(fmt, self.b, off)


def read_ser(data: bytes, name: str) -> SerFile:
    buf = _Buf(data, name)
    order, sid, version = buf.unpack("<HHH", 0)
    if order != 0x4949 or sid != 0x0197:
        raise CorruptFile(f"{name}: not a TIA SER file (byte order {order:#x}, series id {sid:#x})")
    if version not in (0x0210, 0x0220):
        raise CorruptFile(f"{name}: SER version {version:#x} is not supported (0x0210 and 0x0220 are)")
    data_type, tag_type, total, valid = buf.unpack("<IIII", 6)
    wide = version >= 0x0220
    (array_off,) = buf.unpack("<Q" if wide else "<I", 22)
    pos = 30 if wide else 26
    (ndim,) = buf.unpack("<I", pos)
    pos += 4
    if data_type not in (0x4120, 0x4122):
        raise CorruptFile(f"{name}: SER data type {data_type:#x} is unknown (0x4120 spectra, 0x4122 images)")
    if not 0 <= valid <= total <= MAX_ELEMENTS or ndim > 16:
        raise CorruptFile(f"{name}: SER header is inconsistent ({valid} of {total} elements, {ndim} dimensions)")
    ser = SerFile(version, data_type, tag_type, total, valid)
    for _ in range(ndim):
        size, off, delta, elem, dlen = buf.unpack("<IddiI", pos)
        pos += 28
        desc = data[pos:pos + min(dlen, 4096)].decode("latin-1")
        pos += dlen
        (ulen,) = buf.unpack("<I", pos)
        pos += 4
        units = data[pos:pos + min(ulen, 4096)].decode("latin-1")
        pos += ulen
        ser.dimensions.append(Dimension(size, off, delta, elem, desc, units))
    fmt = "<%dQ" if wide else "<%dI"
    offsets = buf.unpack(fmt % total, array_off)[:valid] if total else ()
    elements = []
    for k, off in enumerate(offsets):
        if data_type == 0x4120:
            c_off, c_delta, c_elem, dtype, length = buf.unpack("<ddiHI", off)
            start, shape = off + 26, (length,)
            cal = {"CalibrationOffset": c_off, "CalibrationDelta": c_delta, "CalibrationElement": c_elem,
                   "DataType": dtype, "ArrayLength": length}
        else:
            ox, dx, ex, oy, dy, ey, dtype, sx, sy = buf.unpack("<ddiddiHII", off)
            start, shape = off + 50, (sy, sx)
            cal = {"CalibrationOffsetX": ox, "CalibrationDeltaX": dx, "CalibrationElementX": ex,
                   "CalibrationOffsetY": oy, "CalibrationDeltaY": dy, "CalibrationElementY": ey,
                   "DataType": dtype, "ArraySizeX": sx, "ArraySizeY": sy}
        if dtype not in DTYPES:
            raise CorruptFile(f"{name}: element {k} has unknown data type {dtype}")
        count = int(np.prod(shape))
        nbytes = count * np.dtype(DTYPES[dtype]).itemsize
        if start + nbytes > len(data):
            raise CorruptFile(f"{name}: truncated SER file (element {k} of {valid} runs past the end)")
        if k == 0:
            ser.calibration = cal
        elif shape != elements[0].shape:
            raise CorruptFile(f"{name}: element {k} has shape {shape}, element 0 has {elements[0].shape}")
        elements.append(np.frombuffer(data, DTYPES[dtype], count, start).reshape(shape))
    ser.data = np.stack(elements) if elements else np.zeros((0,))
    return ser
