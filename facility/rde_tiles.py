"""RDEFormat ``divided/NNNN/`` tiles: one tile per measurement where the official template is per measurement.

RDE's RDEFormat mode (rdetoolkit ``RDEFormatChecker``) groups the zip's files by the first path
component of exactly four digits: files under ``divided/0001/`` become tile 1, files without such
a component tile 0 (the registration's own ``data/``). Each tile holds the same kept folders
(``nonshared_raw/``, ``main_image/``, ``meta/``, ``structured/`` ...); every tile gets a copy of the one
registration invoice, and every ``meta/metadata.json`` is checked against the one
``tasksupport/metadata-def.json`` of the dataset.

Which packages are split (docs/rde.md, "Tiles"):
- a template with ``variable`` terms (XRD, VAMAS, PHI, AES) describes every scan, block or region
  of a file in its ``variable`` rows, and the official programs write one tile per file: so do we;
- a template without ``variable`` terms (TemDm3, Em) describes one measurement, so a file holding
  several (a multi-signal DM3) gives one tile per signal: tile 0 is the main signal (the one the
  template's metadata describes without tiles), ``divided/0001``... the others in file order, each
  with its own ``meta/metadata.json``, its structured data and a main image drawn from it. The
  vendor file, which holds them all, stays once, in tile 0.
"""
from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from translators import profiles
from translators.writer import write_json

#: points read from one of our own CSVs to draw a tile's image (bounded: the CSV is ours, but large)
MAX_PLOT_ROWS = 200_000


@dataclass
class Tile:
    index: int                       # 0 = the registration's data/; N = divided/000N
    label: str
    folder: Path                     # holds the tile's kept folders
    warnings: list[str] = field(default_factory=list)


def per_measurement(template: dict[str, Any]) -> bool:
    """A template with no ``variable`` term describes one measurement per tile."""
    return not any(isinstance(t, dict) and t.get("variable") for t in template.values())


def split_tiles(work: Path, template: str, templates_root: Path | None, tiles_dir: Path,
                mode: str = "auto") -> list[Tile]:
    """Extra tiles (index >= 1) written under ``tiles_dir/NNNN/``, moving each measurement's own
    structured files out of ``work`` (tile 0). Empty when the package is one tile."""
    if mode != "auto" or template not in profiles.names() or templates_root is None:
        return []
    profile = profiles.get(template)
    if profile.split is None:
        return []
    tdef = profiles.load_def(work / "tasksupport" / "metadata-def.json")  # the official def apply_profile wrote
    if not per_measurement(tdef):
        return []
    original = json.loads((work / "labedge" / "original_metadata.json").read_text(encoding="utf-8"))
    raw = sorted(p for p in (work / "raw").rglob("*") if p.is_file()) if (work / "raw").is_dir() else []
    try:
        main, measured = profile.split(original)
    except Exception as exc:  # vendor values the splitter did not foresee: one tile, said
        raise profiles.ProfileError(f"profile {template}: the measurements could not be told apart "
                                    f"({type(exc).__name__}: {exc})") from None
    if len(measured) < 2:
        return []
    variant = profiles.variant_of(profile, raw, original)
    def_path = profile.def_path(templates_root, variant)
    stems = {p.stem for p in raw}
    tiles = []
    for k, title, sub in (m for m in measured if m[0] != main):
        tile = Tile(len(tiles) + 1, f"{k}: {title}", tiles_dir / f"{len(tiles) + 1:04d}")
        metadata, tile.warnings = profiles.build(profile, work, def_path, tdef, sub, raw)
        write_json(tile.folder / "meta" / "metadata.json", metadata)
        # the translator names a signal's outputs <vendor stem>_<k>_<title> (translators/gatan_dm)
        mine = [p for p in sorted((work / "structured").glob("*")) if p.is_file()
                and any(p.name.startswith(f"{s}_{k}_") for s in stems)] if (work / "structured").is_dir() else []
        for p in mine:
            (tile.folder / "structured").mkdir(parents=True, exist_ok=True)
            shutil.move(str(p), tile.folder / "structured" / p.name)
        image = _draw(tile.folder / "structured", work / "structured", stems, k, title,
                      tile.folder / "main_image")
        if image is None:
            tile.warnings.append(f"tile {tile.index} ({tile.label}): no image could be drawn; RDE shows no thumbnail")
        tiles.append(tile)
    return tiles


def _draw(own: Path, shared: Path, stems: set[str], k: int, title: str, out: Path) -> Path | None:
    """The tile's main image: its spectrum or profile (CSV) plotted, or its image read from the
    package's HDF5 (every k-th pixel, so at most ~1024 a side is read)."""
    from translators.contract import Preview
    from translators.thumbnail import image_png, plot_png

    import numpy as np

    try:
        for csv in sorted(own.glob("*.csv")) if own.is_dir() else []:
            with csv.open(encoding="utf-8") as fh:
                header = fh.readline().strip().split(",")
                data = np.loadtxt(fh, delimiter=",", max_rows=MAX_PLOT_ROWS, ndmin=2)
            if data.shape[1] >= 2 and data.shape[0]:
                return plot_png(Preview(x=data[:, 0], y=data[:, 1], x_label=header[0], y_label=header[1], title=title),
                                out / f"{csv.stem}.png")
        import h5py

        for h5 in sorted(shared.glob("*.h5")) if shared.is_dir() else []:
            with h5py.File(h5, "r") as f:
                for s in sorted(stems):
                    name = next((n for n in f if n.startswith(f"{s}_{k}_")), None)
                    ds = f[name] if name is not None else None
                    if isinstance(ds, h5py.Dataset) and ds.ndim == 2:
                        step = max(1, math.ceil(max(ds.shape) / 1024))
                        return image_png(np.asarray(ds[::step, ::step]), out / f"{name}.png")
    except (OSError, ValueError, KeyError, TypeError):
        return None  # the tile is still valid; the caller says it has no image
    return None
