"""JEOL SEM sidecar text (``$CM_...`` / ``$SM_...`` / ``$$SM_...`` lines) plus its image.

JEOL SEMs (JSM-6xxx/7xxx/IT series, SEM Center / PC-SEM) save each image as .bmp/.tif/.jpg and a
same-stem .txt holding ``$KEY value`` lines in the PC's code page (cp932 on Japanese Windows,
CRLF). The translator accepts the .txt alone or the .txt with its image; the image gives the
HDF5 array and the thumbnail.

Derived values: pixel size = ``$$SM_MICRON_MARKER`` length / ``$$SM_MICRON_BAR`` pixels (the
calibration the data bar itself shows; the bar is an integer pixel count, so ~1 % precision),
field width = pixel size x ``$CM_FULL_SIZE`` width. ``$CM_STAGE_POS`` is "X Y Z tilt rotation
..." in mm, mm, mm, deg, deg. The text was written for Latin-1, so the micro sign (0xB5) reads
as the half-width katakana "ｵ" in cp932; we turn it back into "µ".
"""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators.contract import (Array, CorruptFile, Preview, TranslationResult, UnsupportedFile,
                                  load_vocabulary)

IMAGE_EXTS = (".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".png")
MAX_TEXT = 1 << 20  # a sidecar is a few kB; anything over 1 MiB is not one
_LINE = re.compile(r"^(\$\$?[A-Z][A-Z0-9_%]*)[ \t]?(.*)$")
_MARKER = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(nm|µm|um|mm)\s*$")
# key: (candidate JEOL keys, kind: num | int | str, factor)
TABLE: dict[str, tuple[list[str], str, float]] = {
    "acceleration_voltage": (["$CM_ACCEL_VOLT"], "num", 1),
    "magnification": (["$CM_MAG"], "num", 1),
    "working_distance": (["$$SM_WD", "$SM_WD"], "num", 1),
    "detector_name": (["$CM_DETECTOR_NAME", "$CM_DETECTOR"], "str", 1),
    "signal_name": (["$CM_SIGNAL_NAME", "$CM_SIGNAL"], "str", 1),
    "column_mode": (["$$SM_COLUMN_MODE"], "str", 1),
    "emission_current": (["$SM_EMI_CURRENT"], "num", 1),
    "probe_current_setting": (["$$SM_PROBE_NO"], "int", 1),
    "objective_aperture": (["$$SM_OL_APERTURE"], "int", 1),
    "scan_speed": (["$$CM_SCAN_SPEED", "$CM_SCAN_SPEED"], "int", 1),
    "scan_mode": (["$$CM_SCAN_MODE"], "int", 1),
    "integration_count": (["$$SM_INTEG_NO"], "int", 1),
    "acquisition_time": (["$$CM_PROCESS_TIME"], "num", 1),
    "scan_rotation": (["$$SM_SCAN_ROTATION"], "num", 1),
    "contrast": (["$CM_CONTRAST"], "num", 1),
    "brightness": (["$CM_BRIGHTNESS"], "num", 1),
    "gentle_beam_bias": (["$SM_GB_BIAS_VOLT"], "num", 1),
    "chamber_vacuum": (["$SM_PENNING_VAC"], "num", 1),
    "operator": (["$CM_OPERATOR"], "str", 1),
    "instrument_model": (["$CM_INSTRUMENT"], "str", 1),
    "title": (["$CM_TITLE"], "str", 1),
    "comment": (["$CM_COMMENT"], "str", 1),
    "format_version": (["$CM_VERSION"], "str", 1),
    "micron_bar_length": (["$$SM_MICRON_BAR"], "int", 1),
}
STAGE_KEYS = ("stage_x", "stage_y", "stage_z", "stage_tilt", "stage_rotation")


def decode_text(raw: bytes, where: str = "") -> str:
    from translators.safeio import decode_text as detect

    text, _ = detect(raw, where=where)
    return text.replace("ｵm", "µm").replace("\u03bcm", "µm")


def parse_sidecar(text: str) -> dict[str, str]:
    """Key -> value; of a repeated key the first value (all of them: :func:`repeated_keys`)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m:
            out.setdefault(m.group(1), m.group(2).strip())
    return out


def repeated_keys(text: str) -> dict[str, list[str]]:
    """Every value of each key that occurs more than once, in file order (never flattened away)."""
    seen: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m:
            seen.setdefault(m.group(1), []).append(m.group(2).strip())
    return {k: v for k, v in seen.items() if len(v) > 1}


def _value(raw: str | None, kind: str, factor: float) -> Any:
    if raw is None or not raw.strip():
        return None
    if kind == "str":
        return raw.strip()
    try:
        v = float(raw.split()[0])
    except (ValueError, IndexError):
        return None
    if kind == "int":
        return int(v) if v == int(v) else None
    return float(f"{v * factor:.10g}")


def map_sidecar(keys: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    out: dict[str, Any] = {}
    warnings: list[str] = []
    for key, (cands, kind, factor) in TABLE.items():
        for k in cands:
            v = _value(keys.get(k), kind, factor)
            if v is not None:
                out[key] = v
                break
    stage = keys.get("$CM_STAGE_POS") or keys.get("$CM_STAGE_POSITION")
    if stage:
        for key, tok in zip(STAGE_KEYS, stage.split()):
            v = _value(tok, "num", 1)
            if v is not None:
                out[key] = v
    size = (keys.get("$CM_FULL_SIZE") or "").split()
    if len(size) >= 2 and all(s.isdigit() for s in size[:2]):
        out["image_width"], out["image_height"] = int(size[0]), int(size[1])
    marker = keys.get("$$SM_MICRON_MARKER")
    if marker:
        out["micron_marker"] = marker
        m = _MARKER.match(marker)
        bar = out.get("micron_bar_length")
        if m and isinstance(bar, int) and bar > 0:
            nm = float(m.group(1)) * {"nm": 1, "µm": 1e3, "um": 1e3, "mm": 1e6}[m.group(2)]
            out["pixel_size"] = float(f"{nm / bar:.6g}")
            if "image_width" in out:
                out["horizontal_field_width"] = float(f"{nm / bar * out['image_width'] / 1e3:.6g}")
    date, time = keys.get("$CM_DATE"), keys.get("$CM_TIME")
    if date and time:
        for fmt in ("%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%m/%d/%Y %H:%M:%S"):
            try:
                out["acquired_at"] = datetime.strptime(f"{date} {time}", fmt).isoformat()
                break
            except ValueError:
                continue
        else:
            warnings.append(f"$CM_DATE/$CM_TIME '{date} {time}' not in a known JEOL form")
    return out, warnings


def _is_sidecar(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except (OSError, ValueError):
        return False
    text = decode_text(head)
    keys = parse_sidecar(text)
    cm = sum(1 for k in keys if k.startswith("$CM_"))
    return ("$CM_FORMAT" in keys or "$SEM_DATA_VERSION" in keys or cm >= 3) and "$CM_MAG" in text


def _read_image(path: Path) -> np.ndarray:
    if path.suffix.lower() in (".tif", ".tiff"):
        from translators.fei_tiff.tiffio import read_image
        return read_image(path)
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > 200_000_000 or w <= 0 or h <= 0:
                raise CorruptFile(f"{path.name}: image declares {w} x {h} pixels; refusing")
            if im.mode in ("P", "1"):
                im = im.convert("RGB" if im.mode == "P" and _palette_is_colour(im) else "L")
            elif im.mode not in ("L", "RGB", "I;16", "I"):
                im = im.convert("RGB")
            arr = np.asarray(im)
    except CorruptFile:
        raise
    except Exception as exc:  # Pillow raises OSError/ValueError/SyntaxError for damaged files
        raise CorruptFile(f"{path.name}: cannot decode image ({type(exc).__name__}: {exc})") from exc
    if arr.ndim == 3 and arr.shape[2] >= 3 and np.array_equal(arr[..., 0], arr[..., 1]) \
            and np.array_equal(arr[..., 0], arr[..., 2]):
        arr = arr[..., 0]  # grey stored as RGB
    return arr


def _palette_is_colour(im: Any) -> bool:
    pal = im.getpalette() or []
    return any(pal[i] != pal[i + 1] or pal[i] != pal[i + 2] for i in range(0, len(pal) - 2, 3))


class JeolSemTranslator:
    name = "jeol-sem"
    version = "0.1.0"
    description = "JEOL SEM sidecar text ($CM_/$SM_ keys) with its .bmp/.tif/.jpg image"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        txts = [Path(p) for p in paths if Path(p).suffix.lower() == ".txt"]
        if not any(_is_sidecar(p) for p in txts):
            return 0.0
        others = [Path(p) for p in paths if Path(p).suffix.lower() != ".txt"]
        stems = {p.stem for p in txts}
        # The pair (or the text alone) is ours; unrelated extra files lower the confidence.
        if all(p.suffix.lower() in IMAGE_EXTS and p.stem in stems for p in others):
            return 0.9
        return 0.5

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        txts = [Path(p) for p in paths if Path(p).suffix.lower() == ".txt" and _is_sidecar(Path(p))]
        if not txts:
            raise UnsupportedFile(f"no JEOL SEM .txt sidecar ($CM_ keys) among "
                                  f"{[Path(p).name for p in paths]}")
        txt = txts[0]
        if txt.stat().st_size > MAX_TEXT:
            raise CorruptFile(f"{txt.name}: {txt.stat().st_size} bytes is too large for a JEOL "
                              f"sidecar (at most {MAX_TEXT})")
        sidecar_text = decode_text(txt.read_bytes(), txt.name)
        keys = parse_sidecar(sidecar_text)
        result = TranslationResult(original={"sidecar": keys})
        repeats = repeated_keys(sidecar_text)
        if repeats:
            result.original["sidecar_repeated"] = repeats
        result.constant, result.warnings = map_sidecar(keys)
        result.constant["file_name"] = txt.name
        images = [Path(p) for p in paths if Path(p).suffix.lower() in IMAGE_EXTS
                  and Path(p).stem == txt.stem]
        if not images:
            result.warnings.append(f"{txt.name}: no image with the same name was given; "
                                   f"metadata only, no preview")
            return result
        img_path = images[0]
        image = _read_image(img_path)
        result.constant["image_file_name"] = img_path.name
        w, h = result.constant.get("image_width"), result.constant.get("image_height")
        if w and h and (image.shape[1], image.shape[0]) != (w, h):
            result.warnings.append(f"{img_path.name} is {image.shape[1]} x {image.shape[0]} px but "
                                   f"$CM_FULL_SIZE says {w} x {h}; pixel size refers to the latter")
        px = result.constant.get("pixel_size")
        axes = {}
        if px and (not w or image.shape[1] == w):
            axes = {"y": {"scale": px, "unit": "nm", "size": int(image.shape[0]), "offset": 0.0},
                    "x": {"scale": px, "unit": "nm", "size": int(image.shape[1]), "offset": 0.0}}
        result.arrays.append(Array(img_path.stem, image, {"source": img_path.name}, axes))
        result.preview = Preview(image=image, title=img_path.name)
        return result
