"""Any TIFF image that no vendor translator claims (a JEOL EPMA image whose $CM_ sidecar came
separately, a camera or stitching export): the baseline TIFF tags, the image as HDF5 and a
thumbnail. Low sniff score, so FEI/Zeiss/JEOL TIFF translators always win when they apply.
Read with tifffile (BSD), already used for the vendor TIFFs.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators import progress
from translators.common import best_score, require_file, text
from translators.contract import Array, CorruptFile, Preview, TranslationResult, load_vocabulary
from translators.safeio import read_head

MAX_PIXELS = 1 << 26  # 64 Mpixel: within the sandbox memory limit even as float64
_TAGS = {"ImageWidth": "image_width", "ImageLength": "image_height", "BitsPerSample": "bits_per_sample",
         "SamplesPerPixel": "samples_per_pixel", "Software": "software", "Make": "make", "Model": "model",
         "Artist": "artist", "ImageDescription": "description"}


def _is_tiff(p: Path) -> bool:
    return read_head(p, 4) in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")


def _plain(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("latin-1", "replace")
    if isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, int) for x in v) and v[1]:
        return v[0] / v[1]  # a TIFF RATIONAL
    if hasattr(v, "name") and hasattr(v, "value"):  # an enum
        return v.name
    if isinstance(v, np.ndarray):
        return f"<array {v.shape} {v.dtype}>"
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v][:64]
    return v if isinstance(v, (str, int, float, bool)) or v is None else str(v)


class TiffImageTranslator:
    name = "tiff-image"
    version = "1.0.0"
    description = "Plain TIFF images (baseline tags, image, thumbnail) not claimed by a vendor translator"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        return best_score(paths, lambda p: 0.15 if _is_tiff(p) else 0.0)

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        import tifffile

        path = require_file(paths, _is_tiff, "no TIFF file (II*/MM* signature)")
        warnings: list[str] = []
        try:
            tif = tifffile.TiffFile(path)
        except Exception as exc:  # noqa: BLE001 - tifffile raises many kinds on a damaged file
            raise CorruptFile(f"{path.name}: not a readable TIFF ({type(exc).__name__}: {exc})") from None
        with tif:
            if not tif.pages:
                raise CorruptFile(f"{path.name}: the TIFF holds no image")
            page = tif.pages[0]
            tags = {t.name: _plain(t.value) for t in page.tags.values()}
            const: dict[str, Any] = {}
            for tag, key in _TAGS.items():
                v = tags.get(tag)
                if isinstance(v, list):
                    v = v[0] if v else None
                if v not in (None, ""):
                    const[key] = text(v) if isinstance(v, str) else v
            const["pages"] = len(tif.pages)
            const["photometric"] = str(tags.get("PhotometricInterpretation", "")) or None
            const["compression"] = str(tags.get("Compression", "")) or None
            const["has_palette"] = "ColorMap" in tags
            for tag, key in (("XResolution", "resolution_x"), ("YResolution", "resolution_y")):
                if isinstance(tags.get(tag), float):
                    const[key] = tags[tag]
            if tags.get("ResolutionUnit"):
                const["resolution_unit"] = str(tags["ResolutionUnit"])
            dt = tags.get("DateTime")
            if isinstance(dt, str):
                try:
                    const["datetime"] = datetime.strptime(dt.strip(), "%Y:%m:%d %H:%M:%S").isoformat()
                except ValueError:
                    warnings.append(f"{path.name}: DateTime {dt!r} is not the TIFF form YYYY:MM:DD HH:MM:SS; "
                                    "kept verbatim in original_metadata.json")
            original = {"tags": tags}
            const = {k: v for k, v in const.items() if v is not None}
            progress.header_read(original, const)
            shape = page.shape
            if int(np.prod(shape)) > MAX_PIXELS:
                warnings.append(f"{path.name}: {shape} is larger than this reader decodes; tags only")
                return TranslationResult(constant=const, original=original, warnings=warnings,
                                         used_keys=[f"tags/{t}" for t in (*_TAGS, "DateTime")])
            try:
                image = page.asarray()
            except Exception as exc:  # noqa: BLE001 - a damaged strip: the tags still count
                warnings.append(f"{path.name}: the image data cannot be decoded ({type(exc).__name__}: {exc}); tags only")
                image = None
        used = [f"tags/{t}" for t in (*_TAGS, "DateTime", "PhotometricInterpretation", "Compression",
                                      "XResolution", "YResolution", "ResolutionUnit", "ColorMap")]
        res = TranslationResult(constant=const, original=original, warnings=warnings, used_keys=used, stem=path.stem)
        if image is not None:
            res.arrays.append(Array(path.stem, image, {"photometric": const.get("photometric", "")}))
            gray = image if image.ndim == 2 else (image[..., :3] if image.ndim == 3 and image.shape[-1] in (3, 4) else None)
            if gray is not None:
                res.preview = Preview(image=gray, title=path.stem)
        return res
