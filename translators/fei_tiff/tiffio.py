"""Small, bounded TIFF helpers shared by the SEM translators (FEI, Zeiss, JEOL image pairing).

``sniff_tiff`` reads only the header and the first IFD's tag numbers (no tifffile import cost,
never raises). ``read_image`` checks every strip/tile against the file size and caps the decoded
size before tifffile allocates, so a truncated or hostile TIFF becomes a CorruptFile.
"""
from __future__ import annotations

import math
import re
import struct
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from translators.contract import CorruptFile

MAX_TAG_BYTES = 8 << 20        # metadata tags are a few kB; 8 MiB is generous
MAX_DECODED = 2 << 30          # one SEM frame (even 6144 x 4096 x 16 bit RGB) is far below
MAX_RATIO = 2000               # decoded/encoded: beyond this a compressed strip is a bomb


def sniff_tiff(path: Path) -> set[int]:
    """Tag numbers of the first IFD, or an empty set if this is not a readable TIFF."""
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
            if len(head) < 8 or head[:2] not in (b"II", b"MM"):
                return set()
            e = "<" if head[:2] == b"II" else ">"
            magic = struct.unpack(e + "H", head[2:4])[0]
            size = path.stat().st_size
            if magic == 42:
                off = struct.unpack(e + "I", head[4:8])[0]
                cnt_fmt, ent, id_fmt = "H", 12, "H"
            elif magic == 43 and len(head) >= 16:
                off = struct.unpack(e + "Q", head[8:16])[0]
                cnt_fmt, ent, id_fmt = "Q", 20, "H"
            else:
                return set()
            if not 8 <= off < size:
                return set()
            fh.seek(off)
            nb = struct.calcsize(cnt_fmt)
            raw = fh.read(nb)
            if len(raw) != nb:
                return set()
            n = struct.unpack(e + cnt_fmt, raw)[0]
            if not 0 < n <= 4096:
                return set()
            body = fh.read(n * ent)
            n = len(body) // ent
            return {struct.unpack(e + id_fmt, body[i * ent:i * ent + 2])[0] for i in range(n)}
    except (OSError, ValueError, struct.error):
        return set()


def truncated_tiff(path: Path) -> bool:
    """True for a file that starts like a TIFF but whose first directory is cut off."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
    except (OSError, ValueError):
        return False
    if len(head) < 8 or head[:4] not in (b"II*\x00", b"MM\x00*"):
        return False
    off = struct.unpack(("<" if head[:2] == b"II" else ">") + "I", head[4:8])[0]
    return off + 2 > size or not sniff_tiff(path)


def raise_if_truncated(paths: Sequence[Path]) -> None:
    """CorruptFile for the first cut-off TIFF: no vendor tag found must not read as "not mine"."""
    for p in paths:
        if truncated_tiff(Path(p)):
            raise CorruptFile(f"{Path(p).name}: TIFF header present but its image directory lies "
                              f"past the end of the file (truncated copy?)")


def pixel_axes(shape: tuple[int, ...], px: float, py: float) -> dict[str, dict[str, Any]]:
    """HDF5 axis attributes (``Array.axes``) of an SEM image whose pixels are ``px`` x ``py`` nm."""
    return {"y": {"scale": py, "unit": "nm", "size": int(shape[0]), "offset": 0.0},
            "x": {"scale": px, "unit": "nm", "size": int(shape[1]), "offset": 0.0}}


def read_tag_bytes(path: Path, codes: Iterable[int]) -> bytes:
    """Raw bytes of the first present tag among ``codes`` in page 0 (for vendor text tags)."""
    import tifffile

    size = path.stat().st_size
    try:
        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            for code in codes:
                tag = tags.get(code)
                if tag is None:
                    continue
                if tag.count > MAX_TAG_BYTES or tag.valueoffset + tag.count > size:
                    raise CorruptFile(f"{path.name}: TIFF tag {code} declares {tag.count} bytes "
                                      f"past the end of the {size}-byte file")
                fh = tif.filehandle
                fh.seek(tag.valueoffset)
                raw = fh.read(tag.count)
                if len(raw) != tag.count:
                    raise CorruptFile(f"{path.name}: TIFF tag {code} is truncated")
                return raw.rstrip(b"\x00")
    except CorruptFile:
        raise
    except Exception as exc:  # tifffile raises many types for damaged files
        raise CorruptFile(f"{path.name}: damaged TIFF structure ({type(exc).__name__}: {exc})") from exc
    raise CorruptFile(f"{path.name}: none of the TIFF tags {list(codes)} is present")


def read_image(path: Path) -> np.ndarray:
    """Pixels of page 0, after checking strips against the file size and the decoded size."""
    import tifffile

    size = path.stat().st_size
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            offsets, counts = page.dataoffsets, page.databytecounts
            if not offsets or any(o + c > size for o, c in zip(offsets, counts)):
                raise CorruptFile(f"{path.name}: image data runs past the end of the file "
                                  f"({size} bytes); truncated copy?")
            decoded = int(np.prod(page.shape)) * np.dtype(page.dtype).itemsize
            if decoded > MAX_DECODED or decoded > MAX_RATIO * max(1, sum(counts)):
                raise CorruptFile(f"{path.name}: image declares {decoded} decoded bytes from "
                                  f"{sum(counts)} stored bytes; refusing")
            image = page.asarray()
    except CorruptFile:
        raise
    except Exception as exc:
        raise CorruptFile(f"{path.name}: cannot decode TIFF image ({type(exc).__name__}: {exc})") from exc
    if image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]
    return image


_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")


def parse_ini(text: str) -> dict[str, dict[str, str]]:
    """FEI's ini text -> {section: {key: raw value}}; keys outside a section go under ''."""
    out: dict[str, dict[str, str]] = {}
    section = ""
    for line in text.splitlines():
        m = _SECTION.match(line)
        if m:
            section = m.group(1).strip()
            out.setdefault(section, {})
            continue
        if "=" in line:
            k, v = line.split("=", 1)
            if k.strip():
                out.setdefault(section, {})[k.strip()] = v.strip()
    return out


def us_datetime(date: str | None, time: str | None, fallback: str | None = None) -> str | None:
    """xT writes [User] Date as MM/DD/YYYY and Time as hh:mm:ss AM/PM (local time, no zone)."""
    for text, fmts in (((f"{date} {time}" if date and time else None),
                        ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S")),
                       (fallback, ("%d.%m.%Y %H:%M:%S",))):
        if not text:
            continue
        for fmt in fmts:
            try:
                return datetime.strptime(text.strip(), fmt).isoformat()
            except ValueError:
                continue
    return None


def jsonable(o: Any) -> Any:
    """tifffile's parsed tag values -> JSON (tuples to lists, bytes to text, NaN to text)."""
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [jsonable(v) for v in o]
    if isinstance(o, bytes):
        return o.decode("latin-1")
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    if isinstance(o, np.generic):
        return jsonable(o.item())
    if isinstance(o, np.ndarray):
        return jsonable(o.tolist()) if o.size <= 4096 else f"<array {o.shape} {o.dtype}>"
    if hasattr(o, "name") and hasattr(o, "value"):  # enums
        return str(o.name)
    return o
