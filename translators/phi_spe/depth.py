"""The binary part of a PHI MultiPak depth profile (``FileType: DEPTHPRO``, ``.pro``).

After ``EOFH`` a u32 is followed by 24-word entry headers (the first word of the first entry
counts them). Each entry names its axes with 4-byte tags: ``pnt``x``cyc`` entries are one
spectral region's spectra, one per sputter cycle; ``cyc``x``reg`` entries are per-cycle values
for every region (``s`` = sputter time, ``c/s`` = the profile intensity). Word 8 and 9 are
the two sizes, word 21 the data type (``f4``/``f8``), words 22/23 the byte length and offset.
Every size is checked against the file before anything is read.
"""
from __future__ import annotations

import struct
from typing import Any

import numpy as np

from translators.contract import CorruptFile

_WORDS = 24
MAX_ENTRIES = 256


def _tag(w: int) -> str:
    return struct.pack("<I", w).rstrip(b"\0").decode("latin-1", "replace").strip()


def read_entries(name: str, b: bytes) -> list[dict[str, Any]]:
    if len(b) < 4 + _WORDS * 4:
        raise CorruptFile(f"{name}: depth-profile binary part is missing or truncated")
    first = struct.unpack_from(f"<{_WORDS}I", b, 4)
    count = first[0] if 0 < first[0] <= MAX_ENTRIES else MAX_ENTRIES
    out = []
    for k in range(count):
        off = 4 + k * _WORDS * 4
        if off + _WORDS * 4 > len(b):
            raise CorruptFile(f"{name}: depth-profile entry {k + 1} of {count} is truncated")
        w = struct.unpack_from(f"<{_WORDS}I", b, off)
        dtype = {"f4": "<f4", "f8": "<f8"}.get(_tag(w[21]))
        if dtype is None:
            if k == 0:
                raise CorruptFile(f"{name}: depth-profile entry 1 has data type {_tag(w[21])!r}, not f4/f8")
            break  # the entry table ended earlier than its count says
        n, m, length, start = w[8], w[9], w[22], w[23]
        item = np.dtype(dtype).itemsize
        if n < 1 or m < 1 or n * m * item > length or start + length > len(b):
            raise CorruptFile(f"{name}: depth-profile entry {k + 1} declares {n} x {m} values "
                              f"({length} bytes at {start}) but the binary part has {len(b)} bytes")
        data = np.frombuffer(b, dtype=dtype, count=n * m, offset=start).astype(float).reshape(m, n)
        out.append({"axes": (_tag(w[11]), _tag(w[13])), "unit": _tag(w[17]) or None, "n": n, "m": m,
                    "data": data, "region": w[3]})
    return out
