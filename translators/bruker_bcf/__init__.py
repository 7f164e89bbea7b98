"""Bruker Esprit ``.bcf`` hypermaps: the header metadata, the overview image and the sum spectrum.

A .bcf is an SFS container (:mod:`translators.bruker_bcf.sfs`) whose ``EDSDatabase/HeaderData``
is Esprit's TRT XML (AACS-compressed in Esprit 2.x): SEM conditions, detector, calibration,
element regions, the overview image (base64 16-bit pixels) and the sum spectrum (``Channels``).
NOT decoded: ``SpectrumData0``, the per-pixel hypermap (Bruker's packed, run-length event
format); it stays in raw/ and the report says so.
"""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators import progress
from translators.bruker_esprit import map_esprit
from translators.bruker_esprit.trt import flatten_trt
from translators.bruker_bcf.sfs import MAGIC, Sfs, unpack_aacs
from translators.common import best_score, num, require_file, to_int
from translators.contract import Array, CorruptFile, Preview, Table, TranslationResult, load_vocabulary
from translators.safeio import local, parse_xml, read_bytes, read_head

MAX_PIXELS = 1 << 26


def _is_bcf(p: Path) -> bool:
    return read_head(p, 8) == MAGIC


def _instances(root: Any, typ: str) -> list[Any]:
    return [e for e in root.iter() if local(e.tag) == "ClassInstance" and e.attrib.get("Type") == typ]


class BrukerBcfTranslator:
    name = "bruker-bcf"
    version = "1.0.0"
    description = "Bruker Esprit .bcf hypermaps: header, overview image, sum spectrum (hypermap cube not decoded)"

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
        self._sum_spectrum(root, path, res, const)
        cube = [p for p in members if "SpectrumData" in p]
        if cube:
            warnings.append(f"{path.name}: the hypermap ({', '.join(cube)}) is not decoded into a spectrum image; "
                            "it stays in raw/ (header, overview image and sum spectrum are translated)")
        return res

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
    def _sum_spectrum(root: Any, path: Path, res: TranslationResult, const: dict[str, Any]) -> None:
        spec = next(iter(_instances(root, "TRTSpectrum")), None)
        channels = spec.findtext("Channels") if spec is not None else None
        if not channels:
            res.warnings.append(f"{path.name}: no sum spectrum (<Channels>) in the header")
            return
        try:
            counts = np.array([float(v) for v in channels.split(",") if v.strip()])
        except ValueError:
            res.warnings.append(f"{path.name}: the sum spectrum holds values that are not numbers")
            return
        off = num(const.get("energy_offset")) or 0.0
        gain = num(const.get("energy_per_channel")) or 0.01
        energy = off + gain * np.arange(len(counts))
        res.tables.append(Table(f"{path.stem}_sum", {"energy": energy, "counts": counts},
                                {"energy": "keV", "counts": "counts"}))
        const.setdefault("number_of_channels", len(counts))
        if res.preview is None:
            res.preview = Preview(x=energy, y=counts, x_label="energy (keV)", y_label="counts", title=path.stem)
