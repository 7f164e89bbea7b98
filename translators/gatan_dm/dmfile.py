"""A compact, bounded reader for Gatan DigitalMicrograph DM3/DM4 tag files.

Why hand-written and not rosettasciio (rsciio.digitalmicrograph): rsciio is GPL-3.0 (labedge is
Apache-2.0 and ships as one PyInstaller bundle), it pulls dask[array], pint, python-box, pyyaml
and python-dateutil plus compiled extensions into the Windows build (tens of MB), and we only need
the tag tree and raw array offsets. The DM3/DM4 container is a simple, long reverse-engineered tag
format (type byte, name, then "%%%%" + a type-encoding array), so ~200 lines cover it, and we can
bound every count and size against the real file size, which a hostile or truncated file needs.

Layout (all header/tag structure big-endian; values in the byte order the header declares):
  DM3: version=3 (u32), file length (u32), byte order (u32: 1 = little-endian values)
  DM4: version=4 (u32), file length (u64), byte order (u32)
  then the root group: sorted (u8), open (u8), tag count (u32 in DM3, u64 in DM4)
  tag: kind (u8: 20 group, 21 data, 0 end), name length (u16), name, [DM4: u64 tag size],
       group -> sorted, open, count; data -> "%%%%", n (u32|u64), n type words (u32|u64), value.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from translators.contract import CorruptFile, UnsupportedFile

# DM value type code -> (struct char, size). 18 = string, 15 = struct, 20 = array.
_SIMPLE = {2: ("h", 2), 3: ("i", 4), 4: ("H", 2), 5: ("I", 4), 6: ("f", 4), 7: ("d", 8),
           8: ("?", 1), 9: ("b", 1), 10: ("B", 1), 11: ("q", 8), 12: ("Q", 8)}
_NP = {2: "i2", 3: "i4", 4: "u2", 5: "u4", 6: "f4", 7: "f8", 8: "u1", 9: "i1", 10: "u1",
       11: "i8", 12: "u8"}
MAX_TAGS = 200_000          # real files hold a few thousand; more means a loop or garbage
MAX_DEPTH = 64
MAX_INFO = 4096             # type-encoding words of one tag (structs of many fields)
SMALL_ARRAY = 4096          # arrays up to this many elements are decoded into the tag tree


@dataclass
class ArrayRef:
    """A large array left in the file: read it with :func:`read_array` after checks."""

    offset: int
    count: int
    dtype: str  # numpy dtype string without byte order
    little: bool

    def __repr__(self) -> str:  # keeps `original` small and readable
        return f"<array {self.count} x {self.dtype}>"


class _Reader:
    def __init__(self, fh: BinaryIO, path: Path, size: int, dm4: bool, little: bool) -> None:
        self.fh, self.path, self.size, self.dm4, self.little = fh, path, size, dm4, little
        self.ntags = 0
        self.vo = "<" if little else ">"

    def _read(self, n: int) -> bytes:
        b = self.fh.read(n)
        if len(b) != n:
            raise CorruptFile(f"{self.path.name}: truncated DM file (needed {n} bytes at offset "
                              f"{self.fh.tell() - len(b)}, file has {self.size})")
        return b

    def _u(self, fmt: str) -> int:
        return struct.unpack(">" + fmt, self._read(struct.calcsize(fmt)))[0]

    def _count(self) -> int:
        return self._u("Q" if self.dm4 else "I")

    def group(self, depth: int) -> dict[str, Any]:
        if depth > MAX_DEPTH:
            raise CorruptFile(f"{self.path.name}: DM tag tree nested deeper than {MAX_DEPTH}")
        self._read(2)  # sorted, open flags
        n = self._count()
        if n > MAX_TAGS or n * 3 > self.size:
            raise CorruptFile(f"{self.path.name}: DM tag group declares {n} tags, "
                              f"more than a {self.size}-byte file can hold")
        out: dict[str, Any] = {}
        for i in range(n):
            self.ntags += 1
            if self.ntags > MAX_TAGS:
                raise CorruptFile(f"{self.path.name}: more than {MAX_TAGS} DM tags")
            kind = self._u("B")
            if kind == 0:  # end marker some writers leave
                break
            name_len = self._u("H")
            name = self._read(name_len).decode("latin-1") if name_len else ""
            if self.dm4:
                self._read(8)  # tag byte size; we parse instead of trusting it
            if kind == 20:
                value: Any = self.group(depth + 1)
            elif kind == 21:
                value = self.data(force_ref=(name == "Data"))
            else:
                raise CorruptFile(f"{self.path.name}: unknown DM tag kind {kind} at offset "
                                  f"{self.fh.tell()}")
            key = name if name else f"[{len(out)}]"  # unnamed tags are list entries
            out[key] = value
        return out

    def data(self, force_ref: bool = False) -> Any:
        if self._read(4) != b"%%%%":
            raise CorruptFile(f"{self.path.name}: DM data tag without '%%%%' marker at offset "
                              f"{self.fh.tell() - 4}")
        n = self._count()
        if not 0 < n <= MAX_INFO:
            raise CorruptFile(f"{self.path.name}: DM data tag with {n} type words")
        info = [self._count() for _ in range(n)]
        return self._value(info, force_ref)

    def _simple(self, code: int) -> Any:
        if code not in _SIMPLE:
            raise CorruptFile(f"{self.path.name}: unknown DM value type {code}")
        ch, size = _SIMPLE[code]
        return struct.unpack(self.vo + ch, self._read(size))[0]

    def _value(self, info: list[int], force_ref: bool = False) -> Any:
        code = info[0]
        if code in _SIMPLE:
            return self._simple(code)
        if code == 18 and len(info) >= 2:  # rare: fixed-length byte string
            return self._bounded(info[1]).decode("latin-1", "replace")
        if code == 15:
            return tuple(self._simple(t) for t in self._struct_fields(info, 0))
        if code == 20 and len(info) >= 3:
            elem = info[1]
            if elem == 15:
                fields = self._struct_fields(info, 1)
                count = info[-1]
                width = sum(_SIMPLE[t][1] for t in fields)
                self._check_len(count * width)
                if count > SMALL_ARRAY:
                    self.fh.seek(count * width, 1)
                    return f"<array of {count} structs>"
                return [tuple(self._simple(t) for t in fields) for _ in range(count)]
            if elem not in _SIMPLE:
                raise CorruptFile(f"{self.path.name}: unknown DM array element type {elem}")
            count = info[2]
            nbytes = count * _SIMPLE[elem][1]
            self._check_len(nbytes)
            small = count <= SMALL_ARRAY and not force_ref  # image "Data" always stays a ref
            if elem == 4 and small:  # UTF-16 text stored as u16 array
                raw = self._read(nbytes)
                return raw.decode("utf-16-le" if self.little else "utf-16-be", "replace")
            if small:
                arr = np.frombuffer(self._read(nbytes), dtype=self.vo + _NP[elem])
                return arr.tolist()
            ref = ArrayRef(self.fh.tell(), count, _NP[elem], self.little)
            self.fh.seek(nbytes, 1)
            return ref
        raise CorruptFile(f"{self.path.name}: unsupported DM type encoding {info[:4]}")

    def _struct_fields(self, info: list[int], start: int) -> list[int]:
        # [15, name_len, n_fields, (field_name_len, field_type) * n]
        if len(info) < start + 3:
            raise CorruptFile(f"{self.path.name}: short DM struct encoding")
        nfields = info[start + 2]
        fields = info[start + 4: start + 4 + 2 * nfields: 2]
        if len(fields) != nfields or any(t not in _SIMPLE for t in fields):
            raise CorruptFile(f"{self.path.name}: bad DM struct encoding {info[:8]}")
        return fields

    def _check_len(self, nbytes: int) -> None:
        if nbytes < 0 or self.fh.tell() + nbytes > self.size:
            raise CorruptFile(f"{self.path.name}: DM array of {nbytes} bytes at offset "
                              f"{self.fh.tell()} runs past the end of the file ({self.size} bytes)")

    def _bounded(self, n: int) -> bytes:
        self._check_len(n)
        return self._read(n)


def sniff_header(head: bytes) -> int:
    """Return 3 or 4 when ``head`` (>= 16 bytes) starts like a DM3/DM4 file, else 0."""
    if len(head) < 16:
        return 0
    version = struct.unpack(">I", head[:4])[0]
    if version == 3:
        order = struct.unpack(">I", head[8:12])[0]
        return 3 if order in (0, 1) and head[12:14] in (b"\x00\x00", b"\x00\x01", b"\x01\x00",
                                                        b"\x01\x01") else 0
    if version == 4:
        order = struct.unpack(">I", head[12:16])[0]
        return 4 if order in (0, 1) else 0
    return 0


def read_tags(path: Path) -> tuple[dict[str, Any], int, bool]:
    """Parse the whole tag tree. Returns (root group, DM version, little-endian values)."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(16)
        version = sniff_header(head)
        if not version:
            raise UnsupportedFile(f"{path.name}: not a DM3/DM4 file (bad header)")
        if version == 3:
            declared = struct.unpack(">I", head[4:8])[0]
            little = struct.unpack(">I", head[8:12])[0] == 1
            fh.seek(12)
        else:
            declared = struct.unpack(">Q", head[4:12])[0]
            little = struct.unpack(">I", head[12:16])[0] == 1
        if declared > size:
            raise CorruptFile(f"{path.name}: DM header declares {declared} bytes but the file has "
                              f"{size} (truncated copy?)")
        reader = _Reader(fh, path, size, version == 4, little)
        return reader.group(0), version, little


def read_array(path: Path, ref: ArrayRef, shape: tuple[int, ...]) -> np.ndarray:
    """Map an image array read-only; the declared shape must match the stored element count."""
    n = 1
    for s in shape:
        n *= int(s)
    if n != ref.count:
        raise CorruptFile(f"{path.name}: image dimensions {shape} do not match the {ref.count} "
                          f"stored values")
    dtype = np.dtype(("<" if ref.little else ">") + ref.dtype)
    if ref.offset + ref.count * dtype.itemsize > path.stat().st_size:
        raise CorruptFile(f"{path.name}: image data runs past the end of the file")
    # memmap: a multi-GB spectrum image is paged in by the HDF5 writer, not copied into RAM.
    return np.memmap(path, dtype=dtype, mode="r", offset=ref.offset, shape=tuple(shape))
