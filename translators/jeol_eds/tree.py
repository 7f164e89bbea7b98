"""JEOL Analysis Station's tagged tree (the body of .ASW, .img, .pts and .map files).

An item is ``0x01``, a u32 name length, the name (NUL-terminated), a u32 type and a u32 byte
length, then the value; ``0xFF`` closes the innermost open item. Type 0 opens a group whose
items follow. Values are little-endian arrays of the type's element (a single element is
returned as a scalar, text as str). A valued item may have items of its own before its ``0xFF``
(``PARAMPAGE1 = "EDXRF"`` holds ``NumCH`` and the templates' ``DigZ``): they are kept under
``"<name> items"`` beside the value, so no existing path changes. Sizes are checked against the data; depth and item
counts are bounded, so a damaged file ends in CorruptFile, never a hang.
"""
from __future__ import annotations

import re
import struct
from typing import Any

import numpy as np

from translators.contract import CorruptFile

TYPES = {1: "u1", 2: "u2", 3: "i4", 4: "f4", 5: "f8", 6: "u1", 7: "u2", 8: "i4", 9: "f4", 10: "f8",
         11: "?", 12: "S", 13: "S", 14: "u2", 20: "S", 65552: "f4", 65553: "f4"}
MAX_ITEMS = 200_000
MAX_DEPTH = 64
_JA_POSITION = b"\xce\xdf\xb0\xc4"  # "ポート" in halfwidth katakana (cp932), JEOL's position key


_ITEM_START = re.compile(rb"\x01([\x02-\x40])\x00\x00\x00")


def find_tree(b: bytes, limit: int = 4096) -> int | None:
    """Offset of the first plausible item: 0x01, a short name of printable bytes, a known type."""
    for m in _ITEM_START.finditer(b, 0, min(len(b), limit + 5)):
        off, n = m.start(), m.group(1)[0]
        if off + 5 + n + 8 > len(b):
            continue
        name = b[off + 5:off + 5 + n]
        if name[-1:] != b"\0" or not all(32 <= c < 127 for c in name[:-1]):
            continue
        (typ,) = struct.unpack_from("<I", b, off + 5 + n)
        if typ == 0 or typ in TYPES:
            return off
    return None


def parse_tree(b: bytes, start: int, where: str, max_value: int = 64 << 20) -> tuple[dict[str, Any], int]:
    """The tree from ``start`` as nested dicts, and the offset where it ended."""
    root: dict[str, Any] = {}
    stack: list[dict[str, Any]] = [root]
    kids: list[tuple[dict[str, Any], str, dict[str, Any]]] = []  # (parent, name, items of a valued item)
    pos, items = start, 0
    while pos < len(b):
        mark = b[pos]
        pos += 1
        if mark == 0xFF:
            if len(stack) > 1:
                stack.pop()
            continue
        if mark != 1:
            return _attach(root, kids), pos - 1  # the tree is over (data follow)
        items += 1
        if items > MAX_ITEMS or len(stack) > MAX_DEPTH:
            raise CorruptFile(f"{where}: JEOL tag tree is larger or deeper than this reader accepts")
        if pos + 4 > len(b):
            raise CorruptFile(f"{where}: truncated JEOL tag (name length at byte {pos})")
        (n,) = struct.unpack_from("<I", b, pos)
        if n > 4096 or pos + 4 + n + 8 > len(b):
            raise CorruptFile(f"{where}: damaged JEOL tag at byte {pos - 1} (name of {n} bytes)")
        raw = b[pos + 4:pos + 4 + n].rstrip(b"\0")
        name = "Position" if raw == _JA_POSITION else raw.decode("cp932", "replace")
        typ, length = struct.unpack_from("<II", b, pos + 4 + n)
        pos += 4 + n + 8
        if typ == 0:
            group: dict[str, Any] = {}
            stack[-1][name] = group
            stack.append(group)
            continue
        kind = TYPES.get(typ)
        if kind is None or length > max_value or pos + length > len(b):
            raise CorruptFile(f"{where}: JEOL tag {name!r} has type {typ} and {length} bytes, which do not fit")
        chunk = b[pos:pos + length]
        pos += length
        if kind == "S":
            parts = [p.decode("cp932", "replace") for p in chunk.rstrip(b"\0").split(b"\0")]
            value: Any = parts[0] if len(parts) == 1 else parts
        else:
            arr = np.frombuffer(chunk[:len(chunk) // np.dtype(kind).itemsize * np.dtype(kind).itemsize], "<" + kind)
            value = arr.item() if arr.size == 1 else arr
        stack[-1][name] = value
        own: dict[str, Any] = {}  # the leaf's own closing 0xFF pops this; items before it land here
        kids.append((stack[-1], name, own))
        stack.append(own)
    return _attach(root, kids), pos


def _attach(root: dict[str, Any], kids: list[tuple[dict[str, Any], str, dict[str, Any]]]) -> dict[str, Any]:
    # innermost first (they were opened last), so an outer item sees its inner ones attached
    for parent, name, own in reversed(kids):
        if own:
            parent[f"{name} items"] = own
    return root
