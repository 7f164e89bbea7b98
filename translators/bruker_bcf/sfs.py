"""A bounded reader for Bruker's SFS container (the ``.bcf`` file of Esprit hypermaps).

SFS: a 0x118-byte preamble, "AASFSSGN" at 0x118, version (float32) and chunk size (u32) at
0x124, tree chunk, item count and chunk count (u32) at 0x140. Chunk k starts at 0x118 + k x chunk size
and begins with a 32-byte header (its first u32 links to the next chunk of a long pointer
table). The file tree is a run of 512-byte items (pointer-table chunk, size, times, parent,
is-directory flag, 256-byte name); a file's bytes are its chunks' payloads in pointer-table
order. Every index and size is checked against the file.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from translators.contract import CorruptFile

MAGIC = b"AAMVHFSS"
BASE = 0x118  # chunks are counted from the SFS signature, after the preamble
_ITEM = struct.Struct("<iQQQQIi176s?3s256s32s")
MAX_ITEMS = 4096


@dataclass
class SfsItem:
    name: str
    size: int
    table: int
    parent: int
    is_dir: bool


class Sfs:
    def __init__(self, data: bytes, where: str) -> None:
        self.b, self.where = data, where
        if not data.startswith(MAGIC) or len(data) < 0x150:
            raise CorruptFile(f"{where}: not a Bruker SFS (.bcf) container")
        self.version, self.chunk = struct.unpack_from("<fI", data, 0x124)
        tree, n_items, n_chunks = struct.unpack_from("<III", data, 0x140)
        if not 1024 <= self.chunk <= 1 << 24 or n_items > MAX_ITEMS:
            raise CorruptFile(f"{where}: SFS header is implausible (chunk {self.chunk}, {n_items} items)")
        self.usable = self.chunk - 32
        raw = self._run(tree, n_items * _ITEM.size)
        self.items: list[SfsItem] = []
        for i in range(n_items):
            f = _ITEM.unpack_from(raw, i * _ITEM.size)
            name = f[10].split(b"\0", 1)[0].decode("latin-1")
            self.items.append(SfsItem(name, f[1], f[0], f[6], bool(f[8])))

    def _payload(self, k: int) -> bytes:
        off = BASE + k * self.chunk
        if k <= 0 or off + self.chunk > len(self.b) + self.usable:
            raise CorruptFile(f"{self.where}: SFS chunk {k} lies outside the file (truncated?)")
        return self.b[off + 32:off + self.chunk]

    def _run(self, first: int, size: int) -> bytes:
        """``size`` bytes from consecutive chunks starting at ``first`` (the tree)."""
        out = bytearray()
        k = first
        while len(out) < size:
            out += self._payload(k)
            k += 1
        return bytes(out[:size])

    def path(self, item: SfsItem) -> str:
        parts, seen = [item.name], 0
        p = item.parent
        while 0 <= p < len(self.items) and seen < 64:
            parts.append(self.items[p].name)
            p = self.items[p].parent
            seen += 1
        return "/".join(reversed(parts))

    def read(self, item: SfsItem, limit: int = 1 << 30) -> bytes:
        if item.size > limit:
            raise CorruptFile(f"{self.where}: SFS member {item.name!r} is {item.size} bytes, more than {limit}")
        n = -(-item.size // self.usable)
        per = self.usable // 4
        table: list[int] = []
        k = item.table
        while len(table) < n:
            payload = self._payload(k)
            want = min(per, n - len(table))
            table += struct.unpack_from(f"<{want}I", payload, 0)
            (k,) = struct.unpack_from("<I", self.b, BASE + k * self.chunk)  # the next table chunk
        out = bytearray()
        for c in table:
            out += self._payload(c)
        if len(out) < item.size:
            raise CorruptFile(f"{self.where}: SFS member {item.name!r} is truncated")
        return bytes(out[:item.size])


def unpack_aacs(data: bytes, where: str, limit: int = 512 << 20) -> bytes:
    """Esprit's compressed member: "AACS", a 0x80-byte header, then blocks of a 16-byte header
    followed by one zlib stream each. Output is bounded (zip-bomb guard)."""
    import zlib

    if not data.startswith(b"AACS"):
        return data
    out = bytearray()
    pos = 0x80
    while pos + 16 < len(data):
        d = zlib.decompressobj()
        try:
            out += d.decompress(data[pos + 16:], limit + 1 - len(out))
        except zlib.error as exc:
            raise CorruptFile(f"{where}: damaged compressed block at byte {pos} ({exc})") from None
        if len(out) > limit:
            raise CorruptFile(f"{where}: decompresses to more than {limit} bytes")
        if not d.eof:
            raise CorruptFile(f"{where}: compressed block at byte {pos} is truncated")
        pos = len(data) - len(d.unused_data)
    return bytes(out)
