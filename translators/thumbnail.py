"""PNG previews drawn with Pillow only (matplotlib is too heavy for the Windows build).

A line plot for spectra and diffractograms, or a contrast-stretched, scaled image.
Large series are reduced to a min/max envelope per pixel column, so drawing costs
O(width) whatever the number of points and narrow peaks stay visible.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from translators.contract import Preview

_COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14),
            (23, 190, 207), (140, 86, 75), (227, 119, 194)]


class PreviewError(ValueError):
    """The preview data cannot be drawn (empty, wrong shape, not numeric)."""


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no size argument
        return ImageFont.load_default()


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _series(preview: Preview) -> tuple[Any, list[np.ndarray]]:
    y = preview.y
    if y is None:
        raise PreviewError("preview has neither an image nor y values")
    if isinstance(y, np.ndarray) and y.ndim == 1:
        ys = [np.asarray(y, dtype=float)]
    elif isinstance(y, np.ndarray) and y.ndim == 2:
        ys = [np.asarray(r, dtype=float) for r in y]
    elif isinstance(y, (list, tuple)) and y and np.ndim(y[0]) == 1:
        ys = [np.asarray(r, dtype=float) for r in y]
    else:
        ys = [np.asarray(y, dtype=float).ravel()]
    ys = [s for s in ys if s.size]
    if not ys:
        raise PreviewError("preview series are empty")
    return preview.x, ys


def _xs_for(x: Any, ys: list[np.ndarray]) -> list[np.ndarray]:
    """One x array per series: a shared x, one x per series (list), or the point index."""
    if isinstance(x, (list, tuple)) and len(x) == len(ys) and all(np.ndim(v) == 1 for v in x):
        cand = [np.asarray(v, dtype=float).ravel() for v in x]
    elif x is not None:
        cand = [np.asarray(x, dtype=float).ravel()] * len(ys)
    else:
        cand = [None] * len(ys)  # type: ignore[list-item]
    return [c[: s.size] if c is not None and c.size >= s.size else np.arange(s.size, dtype=float)
            for c, s in zip(cand, ys)]


def plot_png(preview: Preview, path: Path, size: tuple[int, int] = (800, 500)) -> Path:
    """Draw the x/y series of ``preview`` as a line plot into ``path``."""
    x, ys = _series(preview)
    w, h = size
    small = w < 400
    ml, mr, mt, mb = (8, 8, 8, 8) if small else (70, 20, 34, 50)
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    font = _font(11 if not small else 9)
    pw, ph = w - ml - mr, h - mt - mb
    xs_all = _xs_for(x, ys)
    finite = [v[np.isfinite(v)] for v in ys]
    finite = [v for v in finite if v.size]
    if not finite:
        raise PreviewError("preview series hold no finite numbers")
    ymin = min(float(v.min()) for v in finite)
    ymax = max(float(v.max()) for v in finite)
    xmin = min(float(np.nanmin(v)) for v in xs_all)
    xmax = max(float(np.nanmax(v)) for v in xs_all)
    if ymax <= ymin:
        ymax = ymin + 1.0
    if xmax <= xmin:
        xmax = xmin + 1.0
    d.rectangle([ml, mt, ml + pw, mt + ph], outline=(0, 0, 0))
    for i, (xv, yv) in enumerate(zip(xs_all, ys)):
        colour = _COLOURS[i % len(_COLOURS)]
        ok = np.isfinite(xv) & np.isfinite(yv)
        xv, yv = xv[ok], yv[ok]
        if xv.size == 0:
            continue
        col = np.clip(((xv - xmin) / (xmax - xmin) * (pw - 1)).astype(int), 0, pw - 1)
        row = (ph - 1) - (yv - ymin) / (ymax - ymin) * (ph - 1)
        # min/max envelope per pixel column: cheap for millions of points, keeps narrow peaks
        order = np.argsort(col, kind="stable")
        col, row = col[order], row[order]
        uniq, start = np.unique(col, return_index=True)
        lo = np.minimum.reduceat(row, start)
        hi = np.maximum.reduceat(row, start)
        pts = []
        for c, a, b in zip(uniq, lo, hi):
            pts.append((ml + int(c), mt + float(b)))
            pts.append((ml + int(c), mt + float(a)))
        if len(pts) == 1:
            pts.append(pts[0])
        d.line(pts, fill=colour, width=1)
    if not small:
        d.text((ml, h - mb + 6), _fmt(xmin), fill="black", font=font)
        txt = _fmt(xmax)
        d.text((ml + pw - d.textlength(txt, font=font), h - mb + 6), txt, fill="black", font=font)
        if preview.x_label:
            lx = preview.x_label
            d.text((ml + pw / 2 - d.textlength(lx, font=font) / 2, h - mb + 22), lx, fill="black", font=font)
        d.text((4, mt), _fmt(ymax), fill="black", font=font)
        d.text((4, mt + ph - 12), _fmt(ymin), fill="black", font=font)
        if preview.y_label:
            d.text((4, mt + ph / 2), preview.y_label[:10], fill="black", font=font)
        if preview.title:
            d.text((ml, 10), preview.title[:100], fill="black", font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "PNG", optimize=False)
    return path


def image_png(data: Any, path: Path, max_side: int = 1024) -> Path:
    """Contrast-stretch (0.5-99.5 percentile) a 2-D or RGB array and save it scaled to ``max_side``."""
    a = np.asarray(data)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        a = a[..., :3]
    elif a.ndim > 2:
        a = a.reshape((-1,) + a.shape[-2:])[0]  # first frame of a stack
    if a.ndim < 2 or a.size == 0:
        raise PreviewError(f"preview image has shape {a.shape}; a 2-D or HxWx3 array is needed")
    a = a.astype(np.float64, copy=False)
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        raise PreviewError("preview image holds no finite numbers")
    lo, hi = np.percentile(finite, [0.5, 99.5])
    if hi <= lo:
        lo, hi = float(finite.min()), float(finite.max()) or 1.0
        if hi <= lo:
            hi = lo + 1.0
    scaled = np.clip((np.nan_to_num(a, nan=lo) - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)
    img = Image.fromarray(scaled)
    img.thumbnail((max_side, max_side))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "PNG")
    return path


def render(preview: Preview, main_path: Path, thumb_path: Path) -> list[Path]:
    """Write the main image and the thumbnail of ``preview``."""
    if preview.image is not None:
        return [image_png(preview.image, main_path, 1024), image_png(preview.image, thumb_path, 256)]
    return [plot_png(preview, main_path, (800, 500)), plot_png(preview, thumb_path, (256, 160))]


def multi_series(ys: Sequence[Any]) -> list[np.ndarray]:
    """Helper for translators: a list of 1-D arrays, for ``Preview.y`` with several scans."""
    return [np.asarray(v, dtype=float).ravel() for v in ys]
