"""Bruker Esprit ``.bcf`` hypermaps: header metadata, overview image, sum spectrum and the cube.

A .bcf is an SFS container (:mod:`translators.bruker_bcf.sfs`) whose ``EDSDatabase/HeaderData``
is Esprit's TRT XML (AACS-compressed in Esprit 2.x): SEM conditions, detector, calibration,
element regions, the overview image (base64 16-bit pixels) and the sum spectrum (``Channels``).
``SpectrumData0``, the per-pixel hypermap, is decoded by :mod:`translators.bruker_bcf.hypermap`
into the spectrum-image cube (y, x, energy) and a count map, both in ``structured/<stem>.h5``;
the cube is truncated at its last non-empty channel, binned or refused (count map kept) past
``hypermap.MAX_CUBE_VALUES``. A damaged hypermap is a warning (status ``partial``): the header,
overview image and sum spectrum are kept. NOT decoded: ``SpectrumData1``... (further maps of a
multi-map file) and ``SpectrumPositions0`` (the line offsets, not needed to decode).
"""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators import progress
from translators.bruker_esprit import map_esprit
from translators.bruker_esprit.trt import flatten_trt
from translators.bruker_bcf import hypermap
from translators.bruker_bcf.sfs import MAGIC, Sfs, SfsItem, unpack_aacs
from translators.common import best_score, num, require_file, to_int
from translators.contract import Array, CorruptFile, Preview, Table, TranslationResult, load_vocabulary
from translators.safeio import local, parse_xml, read_bytes, read_head

MAX_PIXELS = 1 << 26
MAX_HYPERMAP_BYTES = 1 << 30  # the decompressed SpectrumData0 held in memory while decoding


def _is_bcf(p: Path) -> bool:
    return read_head(p, 8) == MAGIC


def _instances(root: Any, typ: str) -> list[Any]:
    return [e for e in root.iter() if local(e.tag) == "ClassInstance" and e.attrib.get("Type") == typ]


class BrukerBcfTranslator:
    name = "bruker-bcf"
    version = "1.1.0"
    description = "Bruker Esprit .bcf hypermaps: header, overview image, sum spectrum, spectrum-image cube"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        return best_score(paths, lambda p: 0.95 if _is_bcf(p) else 0.0)

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        path = require_file(paths, _is_bcf, "no Bruker .bcf file (SFS signature AAMVHFSS)")
        sfs = Sfs(read_bytes(path), path.name)
        members = {sfs.path(i): i for i in sfs.items if not i.is_dir}
        header = next((i for p, i in members.items() if p.endswith("HeaderData")), None)
        if header is None:
            raise CorruptFile(f"{path.name}: no EDSDatabase/HeaderData in the container ({', '.join(members)})")
        xml = unpack_aacs(sfs.read(header), path.name)
        root = parse_xml(xml.rstrip(b"\0"), f"{path.name}:HeaderData")
        flat = flatten_trt(root)
        warnings: list[str] = []
        const = map_esprit(flat, self.vocabulary(), path.name, warnings)
        const["sfs_version"] = f"{sfs.version:.1f}"
        if "acquisition_date" not in const:  # a database's own date (TRTSpectrumDatabase/Header)
            from translators.bruker_esprit import esprit_date

            iso = esprit_date(root.findtext(".//Header/Date"), root.findtext(".//Header/Time"))
            if iso:
                const["acquisition_date"] = iso
        regions = [e.attrib.get("Name") for e in _instances(root, "TRTSpectrumRegion") if e.attrib.get("Name")]
        if regions:
            const["regions"] = ", ".join(regions)
        original = {"sfs": {"version": round(sfs.version, 3), "chunk_size": sfs.chunk,
                            "members": {p: i.size for p, i in members.items()}}, "header": flat}
        progress.header_read(original, const)
        res = TranslationResult(constant=const, original=original, warnings=warnings, stem=path.stem)
        self._map_image(root, const)
        self._overview(root, path, res, const)
        stored = self._sum_spectrum(root, path, res, const)
        maps = sorted(p for p in members if p.rsplit("/", 1)[-1].startswith("SpectrumData"))
        first = next((p for p in maps if p.endswith("SpectrumData0")), None)
        if first is not None:
            try:
                self._hypermap(sfs, members[first], path, res, const, stored)
            except hypermap.HypermapError as exc:
                warnings.append(f"{path.name}: {first}: {exc}; the cube is not written "
                                "(header, overview image and sum spectrum are kept)")
            except CorruptFile as exc:  # the container or the compression around the map is damaged
                warnings.append(f"{path.name}: {first} cannot be read ({exc}); the cube is not written "
                                "(header, overview image and sum spectrum are kept)")
        if len(maps) > 1 or (maps and first is None):
            rest = [p for p in maps if p != first]
            warnings.append(f"{path.name}: further hypermaps ({', '.join(rest)}) are not decoded; they stay in raw/")
        return res

    @staticmethod
    def _hypermap(sfs: Sfs, item: SfsItem, path: Path, res: TranslationResult, const: dict[str, Any],
                  stored: np.ndarray | None) -> None:
        data = unpack_aacs(sfs.read(item, MAX_HYPERMAP_BYTES), f"{path.name}:{item.name}", MAX_HYPERMAP_BYTES)
        height, width = hypermap.probe(data)
        if (const.get("map_width"), const.get("map_height")) not in ((width, height), (None, None)):
            res.warnings.append(f"{path.name}: the hypermap is {width} x {height} pixels, the header's map "
                                f"image {const.get('map_width')} x {const.get('map_height')}")
        channels = to_int(const.get("number_of_channels")) or 0
        if not 0 < channels <= 1 << 16:
            channels = 4096  # 12-bit pulse lists name at most 4096 channels
            res.warnings.append(f"{path.name}: no channel count in the header; the cube assumes {channels}")
        last = int(np.flatnonzero(stored)[-1]) if stored is not None and stored.any() else None
        plan = hypermap.plan(height, width, channels, last)
        hm = hypermap.decode(data, channels, plan)
        off = num(const.get("energy_offset")) or 0.0
        gain = num(const.get("energy_per_channel")) or 0.01
        pixel_axes = {"y": {"size": height, "unit": "pixel"}, "x": {"size": width, "unit": "pixel"}}
        wide = hm.count_map.max(initial=0) >= 1 << 32
        res.arrays.append(Array("count_map", hm.count_map.astype(np.uint64 if wide else np.uint32),
                                {"kind": "counts per pixel (sum over all channels)", "unit": "counts"}, pixel_axes))
        if hm.cube is not None:
            # channel i of the cube spans channels i*bin .. i*bin+bin-1: its energy is their first one
            res.arrays.append(Array("hypermap", hm.cube, {
                "kind": "EDS spectrum image (y, x, energy)", "unit": "counts", "channel_binning": hm.bin,
                "channels_in_file": channels, "pixels_stored": hm.pixels,
                "packing_flags": {str(k): v for k, v in sorted(hm.flags.items())}},
                {**pixel_axes, "energy": {"size": hm.cube.shape[2], "offset": off, "scale": gain * hm.bin,
                                          "unit": "keV"}}))
        else:
            res.warnings.append(f"{path.name}: the hypermap cube ({width} x {height} x {plan.keep} channels, "
                                f"{plan.values} values even binned by {hypermap.MAX_BIN}) is more than the "
                                f"{hypermap.MAX_CUBE_VALUES} values this reader keeps; only the count map is written")
        if plan.bin > 1 and hm.cube is not None:
            res.warnings.append(f"{path.name}: the hypermap cube is binned by {plan.bin} channels to stay under "
                                f"{hypermap.MAX_CUBE_VALUES} values")
        if hm.dropped:
            top = min(plan.keep, channels) if hm.cube is not None else channels
            res.warnings.append(f"{path.name}: {hm.dropped} hypermap counts lie above channel {top} "
                                "and are not in the cube")
        if stored is not None:
            n = min(len(stored), len(hm.spectrum))
            if not np.array_equal(stored[:n], hm.spectrum[:n]) or stored[n:].any():
                res.warnings.append(f"{path.name}: the hypermap's pixel sum ({int(hm.spectrum.sum())} counts) "
                                    f"differs from the stored sum spectrum ({int(stored.sum())} counts)")
        if res.preview is None:
            res.preview = Preview(image=hm.count_map.astype(np.float64), title=f"{path.stem} counts per pixel")

    @staticmethod
    def _map_image(root: Any, const: dict[str, Any]) -> None:
        first = next(iter(_instances(root, "TRTImageData")), None)
        if first is not None:
            const["map_width"] = to_int(first.findtext("Width"))
            const["map_height"] = to_int(first.findtext("Height"))

    @staticmethod
    def _overview(root: Any, path: Path, res: TranslationResult, const: dict[str, Any]) -> None:
        box = next((e for e in _instances(root, "TRTContainerClass") if e.attrib.get("Name") == "OverviewImages"), None)
        img = next(iter(_instances(box, "TRTImageData")), None) if box is not None else None
        if img is None:
            res.warnings.append(f"{path.name}: no overview image in the header")
            return
        w, h, item = to_int(img.findtext("Width")), to_int(img.findtext("Height")), to_int(img.findtext("ItemSize"))
        data = img.findtext("Plane0/Data")
        const["overview_width"], const["overview_height"] = w, h
        if not (w and h and item in (1, 2, 4) and data) or w * h > MAX_PIXELS:
            res.warnings.append(f"{path.name}: the overview image has no readable pixel data")
            return
        try:
            raw = base64.b64decode(data, validate=False)
        except ValueError:
            res.warnings.append(f"{path.name}: the overview image data is not base64; not decoded")
            return
        dtype = {1: "<u1", 2: "<u2", 4: "<u4"}[item]
        if len(raw) < w * h * item:
            res.warnings.append(f"{path.name}: the overview image holds {len(raw)} bytes for {w}x{h}x{item}; not decoded")
            return
        image = np.frombuffer(raw, dtype, w * h).reshape(h, w)
        res.arrays.append(Array("overview", image, {"kind": "overview image"},
                                {"x": {"scale": num(img.findtext("XCalibration")), "unit": "um"}}))
        res.preview = Preview(image=image, title=f"{path.stem} overview")

    @staticmethod
    def _sum_spectrum(root: Any, path: Path, res: TranslationResult, const: dict[str, Any]) -> np.ndarray | None:
        spec = next(iter(_instances(root, "TRTSpectrum")), None)
        channels = spec.findtext("Channels") if spec is not None else None
        if not channels:
            res.warnings.append(f"{path.name}: no sum spectrum (<Channels>) in the header")
            return None
        try:
            counts = np.array([float(v) for v in channels.split(",") if v.strip()])
        except ValueError:
            res.warnings.append(f"{path.name}: the sum spectrum holds values that are not numbers")
            return None
        off = num(const.get("energy_offset")) or 0.0
        gain = num(const.get("energy_per_channel")) or 0.01
        energy = off + gain * np.arange(len(counts))
        res.tables.append(Table(f"{path.stem}_sum", {"energy": energy, "counts": counts},
                                {"energy": "keV", "counts": "counts"}))
        const.setdefault("number_of_channels", len(counts))
        if res.preview is None:
            res.preview = Preview(x=energy, y=counts, x_label="energy (keV)", y_label="counts", title=path.stem)
        return counts
