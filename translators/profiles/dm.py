"""nims-temdm3 (TEM/STEM/EELS/TED) and nims-em (DigitalMicrograph, TIFF, image): the two
RDE_ELECTRON_MICROSCOPE_STANDARD templates.

Their terms name hyperspy's flattened DM tag paths (``ImageList.TagGroup0.ImageTags.X``), where
``TagGroup0`` is the measured image (not DM's thumbnail). labedge's DM reader keeps DM's own tree
(``tags/ImageList/[1]/ImageTags/X``); this module translates one path into the other.

Deliberately not copied from the official program (docs/rde.md):
- ``pixel_actual_size_along_x_axis`` is written (the official program writes it into a key the
  template does not have, so it is never filled);
- an empty DM text is left out, not written as the string ``"[]"``;
- ``.dm4`` files and files with several signals are accepted (the official program fails on them).
"""
from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from translators.profiles import Profile, entry

_NUM_UNIT = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*([A-Za-zµ]+)\s*$")


def _images(original: dict[str, Any]) -> list[dict[str, Any]]:
    il = (original.get("tags") or {}).get("ImageList") or {}
    return list(il.values()) if isinstance(il, dict) else list(il)


def _size(img: dict[str, Any]) -> int:
    dims = (img.get("ImageData") or {}).get("Dimensions") or {}
    dims = list(dims.values()) if isinstance(dims, dict) else list(dims)
    return math.prod(int(d) for d in dims) if dims else 0


def main_image(original: dict[str, Any]) -> dict[str, Any]:
    """The measured image: DM stores a thumbnail first; hyperspy's TagGroup0 is the largest other one."""
    imgs = _images(original)
    if len(imgs) > 1:
        imgs = imgs[1:]
    return max(imgs, key=_size) if imgs else {}


def signals(original: dict[str, Any]) -> tuple[int, list[tuple[int, str, dict[str, Any]]]]:
    """The measured signals of a DM file with several (DM's thumbnail first, then one entry per
    signal, numbered as the gatan-dm translator names its outputs ``<stem>_<k>_<title>``): the index
    of the main one (``main_image``) and, per signal, an original holding only that signal. One
    signal gives ``(0, [])``: the file is one measurement."""
    imgs = _images(original)
    if len(imgs) < 3:
        return 0, []
    thumb, rest = imgs[0], imgs[1:]
    main = max(range(len(rest)), key=lambda k: _size(rest[k]))  # the same choice as main_image
    tags = original.get("tags") or {}
    out = []
    for k, img in enumerate(rest):
        name = img.get("Name") if isinstance(img, dict) and isinstance(img.get("Name"), str) else f"signal {k}"
        out.append((k, name, {**original, "tags": {**tags, "ImageList": {"[0]": thumb, "[1]": img}}}))
    return main, out


def _get(img: dict[str, Any], dotted: str) -> Any:
    parts = dotted.split(".")
    if parts[:2] != ["ImageList", "TagGroup0"]:
        return None
    node: Any = img
    for i, part in enumerate(parts[2:]):
        if part == "size_bytes" and i and parts[i + 1] == "Data":
            depth = (img.get("ImageData") or {}).get("PixelDepth")
            return _size(img) * int(depth) if depth else None
        m = re.fullmatch(r"TagGroup(\d+)|Data(\d+)|(\d+)", part)
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif m and isinstance(node, dict):
            node = node.get(f"[{next(g for g in m.groups() if g is not None)}]")
        elif m and isinstance(node, list):
            k = int(next(g for g in m.groups() if g is not None))
            node = node[k] if k < len(node) else None
        else:
            return None
        if node is None:
            return None
    return node


def _convention(key: str, value: Any, unit: str | None) -> Any:
    """The official program's spelling of a DM value (it writes str() of hyperspy's value)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        return "(" + ", ".join(map(str, value)) + ")"
    if isinstance(value, float) and key.endswith("_enable"):
        return str(value)
    if isinstance(value, str):
        m = _NUM_UNIT.match(value)
        if m and unit and m[2] == unit:  # "5 mm" in a mm term: the number
            return float(m[1]) if "." in m[1] else int(m[1])
    return value


def _datetime(img: dict[str, Any], method: str) -> datetime | None:
    tags = img.get("ImageTags") or {}
    if method == "EELS":
        acq = (tags.get("EELS") or {}).get("Acquisition") or {}
        d, t = acq.get("Date"), acq.get("End time")
    else:
        bar = tags.get("DataBar") or {}
        d, t = bar.get("Acquisition Date"), bar.get("Acquisition Time")
    for fmt in ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S", "%Y/%m/%d %H:%M:%S"):
        try:
            return datetime.strptime(f"{d} {t}", fmt)
        except (TypeError, ValueError):
            continue
    return None


def method_of(original: dict[str, Any]) -> str:
    """TemDm3's method from the file (the official program takes it from the invoice)."""
    tags = main_image(original).get("ImageTags") or {}
    if str((tags.get("Meta Data") or {}).get("Signal", "")).upper() == "EELS" or "EELS" in tags:
        return "EELS"
    mic = tags.get("Microscope Info") or {}
    if str(mic.get("Operation Mode", "")).upper() == "SCANNING":
        return "STEM"
    if "DIFFRACTION" in (str(mic.get("Imaging Mode", "")).upper(), str(mic.get("Operation Mode", "")).upper()):
        return "TED"
    return "TEM"


def build_temdm3(original: dict[str, Any], template: dict[str, Any], raw_files: list[Path]) -> tuple[dict[str, Any], list[str]]:
    img = main_image(original)
    method = method_of(original)
    prefix = method.lower() + "."
    out: dict[str, Any] = {}
    for key, term in template.items():
        orig = term.get("originalName")
        if not orig:
            continue
        value = _get(img, orig)
        if value is None or value == "" or value == []:
            continue
        unit = term.get("unit")
        if isinstance(unit, str) and unit.startswith("$"):
            unit = _get(img, unit[1:]) or None
        out[key] = entry(_convention(key, value, unit), term, unit)
    when = _datetime(img, method)
    if when:
        for part in ("year", "month", "day", "hour", "minute", "second"):
            k = f"{prefix}operation_date_time_{part}"
            if k in template:
                out[k] = {"value": getattr(when, part)}
    for axis in ("x", "y"):
        n, s = out.get(f"{prefix}pixel_number_along_{axis}_axis"), out.get(f"{prefix}pixel_size_along_{axis}_axis")
        k = f"{prefix}pixel_actual_size_along_{axis}_axis"
        if n and s and k in template:
            out[k] = entry(str(int(n["value"]) * float(s["value"])), template[k], s.get("unit"))
    tags = img.get("ImageTags") or {}
    technique = ((tags.get("Meta Data") or {}).get("Signal") if method == "EELS"
                 else (tags.get("Microscope Info") or {}).get("Illumination Mode"))
    if technique and "measurement_technique" in template:
        out["measurement_technique"] = {"value": technique}
    return {"constant": out, "variable": []}, []


def _mtime(raw_files: list[Path]) -> str | None:
    if not raw_files:
        return None
    # the official program writes the file's local modification time without a zone
    return datetime.fromtimestamp(raw_files[0].stat().st_mtime).replace(microsecond=0).isoformat()


def _tiff_tag(original: dict[str, Any], name: str) -> Any:
    stack = [original]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                if k == name and isinstance(v, (int, float, str)):
                    return v
                stack.append(v)
    return None


def _tiff_tags(raw_files: list[Path]) -> dict[str, Any]:
    """Baseline tags of the first page of the vendor TIFF (tifffile reads only the header)."""
    import tifffile

    for raw in (p for p in raw_files if p.suffix.lower() in (".tif", ".tiff")):
        try:
            with tifffile.TiffFile(raw) as tif:
                return {t.name: t.value for t in tif.pages[0].tags.values() if isinstance(t.value, (int, str))}
        except Exception:  # a damaged TIFF leaves the terms out; the translator already reported it
            return {}
    from PIL import Image

    for raw in (p for p in raw_files if p.suffix.lower() in (".bmp", ".jpg", ".jpeg", ".png")):
        try:
            with Image.open(raw) as im:  # reads the header only; the size is all the template asks
                return {"ImageWidth": im.width, "ImageLength": im.height}
        except Exception:  # as above: the translator has reported a damaged image
            return {}
    return {}


def build_em(original: dict[str, Any], template: dict[str, Any], raw_files: list[Path]) -> tuple[dict[str, Any], list[str]]:
    out: dict[str, Any] = {}
    img = main_image(original) if "tags" in original else None
    if img is None:
        original = {**_tiff_tags(raw_files), "vendor": original}
    for key, term in template.items():
        orig = term.get("originalName")
        if not orig:
            continue
        value = _get(img, orig) if img is not None else _tiff_tag(original, orig)
        if value is None:
            continue
        try:
            out[key] = entry(int(value) if term["schema"].get("type") == "integer" else value, term)
        except (TypeError, ValueError):
            continue
    when = _mtime(raw_files)
    if when and "file_last_modified_date_time" in template:
        out["file_last_modified_date_time"] = {"value": when}
    return {"constant": out, "variable": []}, []


_DM = ("gatan-dm",)
_TIFF = ("fei-tiff", "zeiss-tiff", "tiff-image", "jeol-sem")
PROFILES = (
    Profile("nims-temdm3", _DM, "RDE_ELECTRON_MICROSCOPE_STANDARD", "templates/template_TemDm3/tasksupport",
            build_temdm3, defs={m: f"metadata-def_{m}.json" for m in ("TEM", "STEM", "EELS", "TED")}, split=signals),
    Profile("nims-em", _DM + _TIFF, "RDE_ELECTRON_MICROSCOPE_STANDARD", "templates/template_Em/tasksupport",
            build_em, defs={"dm3": "metadata-def_DigitalMicrograph.json", "dm4": "metadata-def_DigitalMicrograph.json",
                            "tif": "metadata-def_Tiff.json", "tiff": "metadata-def_Tiff.json",
                            "": "metadata-def_Image.json"}, split=signals),
)
