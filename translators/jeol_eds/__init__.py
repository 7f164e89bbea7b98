"""JEOL Analysis Station (JED-2200/2300 EDS): ``.ASW`` projects, ``.img`` images, ``.pts``
spectrum maps and ``.EDS`` spectra.

.ASW/.img/.pts hold JEOL's tagged tree (:mod:`translators.jeol_eds.tree`), read by label.
An .img may hold a thumbnail tree and then the full tree with ``Image/Bits``; the later tree
wins. A .pts holds the conditions, the sum spectrum (``EDS Data/.../Data/EDXRF``) and the
list-mode X-ray events, decoded by :mod:`translators.jeol_eds.events` into a bounded (y, x,
energy) spectrum image summed over sweeps and a count map; damaged or missing events leave the
conditions and the sum spectrum, with a warning (``partial``). An .ASW names the
files of each view; those that did not come with the measurement are named, never fatal.
An .EDS is a fixed binary layout: the date (OLE days at byte 10), the "Live Time" label with
its value, the 2048-channel spectrum after it, and a trailer of strings (detector, lines).
"""
from __future__ import annotations

import re
import struct
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators import progress
from translators.common import best_score, num, text, to_int
from translators.contract import Array, CorruptFile, Preview, Table, TranslationResult, UnsupportedFile, load_vocabulary
from translators.jeol_eds.events import pts_events
from translators.jeol_eds.tree import find_tree, parse_tree
from translators.safeio import read_bytes, read_head
from translators.writer import flatten

MAX_BYTES = 1 << 30
_KINDS = {".asw": "ASW", ".img": "IMG", ".pts": "PTS", ".map": "MAP", ".eds": "EDS"}
_TERMS = {  # vocabulary key -> flat-path tails tried in order, and a factor
    "acceleration_voltage": (("Instrument/AccV", "MeasCond/AccKV", "ViewInfo/0/Volt"), 1.0),
    "probe_current": (("Instrument/Currnnt", "MeasCond/AccNA"), 1.0),
    "magnification": (("Instrument/Mag", "MeasCond/Mag", "ViewInfo/0/Mag"), 1.0),
    "working_distance": (("Instrument/WorkD", "MeasCond/WD", "ViewInfo/0/WorkD"), 1.0),
    "live_time": (("Doc/LiveTime",), 1.0), "real_time": (("Doc/RealTime",), 1.0),
    "dead_time": (("Doc/DeadTime",), 1.0), "count_rate": (("Doc/CountRate",), 1.0),
    "dwell_time": (("Doc/DwellTime(msec)",), 1.0), "sweeps": (("Doc/Sweep",), 0),
    "energy_per_channel": (("Doc/CoefA",), 1.0), "energy_offset": (("Doc/CoefB",), 1.0),
    "take_off_angle": (("PARAMPAGE0 items/TakeAng",), 1.0),
}
_STRINGS = {"file_type": ("FileType",), "instrument": ("Instrument/Name", "PARAMPAGE0 items/SEM"),
            "detector": ("PARAMPAGE0 items/DetT",), "image_title": ("Image/Title",),
            "pixels": ("Meas Cond/Pixels",), "holder_name": ("HolderName",)}


def _kind(p: Path) -> str | None:
    k = _KINDS.get(p.suffix.lower())
    if k is None:
        return None
    head = read_head(p, 4096)
    if k == "EDS":
        return k if len(head) >= 64 and b"Live Time" in read_head(p, 1024) else None
    return k if find_tree(head) is not None else None


def ole_date(days: Any) -> str | None:
    d = num(days)
    if d is None or not 1.0 < d < 2958465.0:  # 1900 .. 9999
        return None
    return (datetime(1899, 12, 30) + timedelta(days=d)).replace(microsecond=0).isoformat()


def _tail(flat: dict[str, Any], tails: Sequence[str]) -> tuple[str | None, Any]:
    for t in tails:
        for k, v in flat.items():
            if (k == t or k.endswith("/" + t)) and v is not None and not isinstance(v, (list, dict)):
                return k, v
    return None, None


class JeolEdsTranslator:
    name = "jeol-eds"
    version = "1.0.0"
    description = "JEOL Analysis Station EDS: .ASW projects, .img images, .pts maps, .EDS spectra"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        return best_score(paths, lambda p: 0.9 if _kind(p) else 0.0)

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        files = [(Path(p), _kind(Path(p))) for p in paths]
        files = [(p, k) for p, k in files if k]
        if not files:
            raise UnsupportedFile(", ".join(Path(p).name for p in paths) + ": no JEOL Analysis Station file")
        order = {"ASW": 0, "PTS": 1, "IMG": 2, "MAP": 3, "EDS": 4}
        files.sort(key=lambda pk: order[pk[1]])
        res = TranslationResult(stem=files[0][0].stem)
        names = {p.name.lower() for p in map(Path, paths)}
        const: dict[str, Any] = {"file_kind": ", ".join(sorted({k for _, k in files}))}
        for path, kind in files:
            if kind == "EDS":
                self._eds(path, res, const)
                continue
            data = read_bytes(path, MAX_BYTES)
            tree = self._trees(data, path.name, res.warnings)
            res.original[path.name] = tree
            flat = flatten({k: v for k, v in tree.items()})
            self._map(flat, const, path.name, res)
            progress.header_read(res.original, const)
            if kind == "ASW":
                self._members(flat, names, const, res.warnings, path.name)
            elif kind in ("IMG", "MAP"):
                self._image(tree, path, res, const)
            elif kind == "PTS":
                self._pts(flat, data, path, res, const)
        res.constant = {k: v for k, v in const.items() if v is not None}
        return res

    @staticmethod
    def _trees(data: bytes, name: str, warnings: list[str]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        start, n = find_tree(data), 0
        while start is not None and n < 8:
            tree, end = parse_tree(data, start, name)
            merged.update(tree)  # a later (full) tree wins over a thumbnail tree
            n += 1
            nxt = find_tree(data[end:], limit=1 << 16)
            start = end + nxt if nxt is not None else None
        if not merged:
            raise CorruptFile(f"{name}: no JEOL tag tree found")
        return merged

    def _map(self, flat: dict[str, Any], const: dict[str, Any], name: str, res: TranslationResult) -> None:
        for key, (tails, factor) in _TERMS.items():
            if key in const:
                continue
            k, v = _tail(flat, tails)
            if k is None:
                continue
            f = num(v)
            if f is None:
                const[key] = str(v)  # verbatim; the writer reports it
            else:
                const[key] = int(f) if factor == 0 and f.is_integer() else f * (factor or 1.0)
            res.used_keys.append(f"{name}/{k}")
        for key, tails in _STRINGS.items():
            k, v = _tail(flat, tails)
            if k is not None and key not in const and text(v):
                const[key] = text(v)
                res.used_keys.append(f"{name}/{k}")
        k, v = _tail(flat, ("Image/Created",))
        if k is not None and "acquisition_date" not in const and ole_date(v):
            const["acquisition_date"] = ole_date(v)
            res.used_keys.append(f"{name}/{k}")

    @staticmethod
    def _members(flat: dict[str, Any], names: set[str], const: dict[str, Any], warnings: list[str], name: str) -> None:
        refs = [str(v) for k, v in flat.items() if k.endswith("/Filename") and text(v)]
        views = sorted({str(v) for k, v in flat.items() if re.search(r"ViewInfo/\d+/Memo$", k) and text(v)})
        if views:
            const["view_names"] = ", ".join(views)
        if not refs:
            return
        short = [r.replace("\\", "/").rsplit("/", 1)[-1] for r in refs]
        const["referenced_files"] = text(", ".join(short))
        missing = [s for s in short if s.lower() not in names]
        if missing:
            const["missing_files"] = text(", ".join(missing))
            warnings.append(f"{name}: {len(missing)} of {len(short)} referenced files did not come with this "
                            f"measurement: {', '.join(missing)}; what is here is translated")

    @staticmethod
    def _image(tree: dict[str, Any], path: Path, res: TranslationResult, const: dict[str, Any]) -> None:
        img = tree.get("Image") if isinstance(tree.get("Image"), dict) else {}
        size = img.get("Size")
        bits = img.get("Bits")
        if isinstance(size, np.ndarray) and size.size >= 2:
            const.setdefault("image_width", int(size[0]))
            const.setdefault("image_height", int(size[1]))
        if isinstance(bits, np.ndarray) and isinstance(size, np.ndarray) and size.size >= 2:
            w, h = int(size[0]), int(size[1])
            if bits.size == w * h:
                image = bits.reshape(h, w)
                res.arrays.append(Array(path.stem, image, {"title": str(img.get("Title", ""))}))
                res.preview = res.preview or Preview(image=image, title=path.stem)
                return
        res.warnings.append(f"{path.name}: no full-size image (Image/Bits) in the file; metadata only")

    @staticmethod
    def _pts(flat: dict[str, Any], data: bytes, path: Path, res: TranslationResult, const: dict[str, Any]) -> None:
        k = next((k for k, v in flat.items() if k.endswith("Data/EDXRF") and isinstance(v, np.ndarray)), None)
        stored = np.asarray(flat[k], dtype=np.int64) if k is not None else None
        gain = num(const.get("energy_per_channel")) or 0.01
        off = num(const.get("energy_offset")) or 0.0
        if stored is not None:
            const["number_of_channels"] = len(stored)
            res.used_keys.append(f"{path.name}/{k}")
        cols: dict[str, Any] = {}
        try:
            cols = pts_events(flat, data, path, res, const, stored)
        except CorruptFile as exc:  # the conditions and the stored sum are kept
            res.warnings.append(f"{exc}; the list-mode events are not decoded, the conditions and the "
                                "sum spectrum are translated")
        if stored is not None:
            cols = {"counts": stored, **cols}
        if not cols:
            return
        n = len(next(iter(cols.values())))
        energy = off + gain * np.arange(n)
        res.tables.append(Table(f"{path.stem}_sum", {"energy": energy, **cols},
                                {"energy": "keV", **{c: "counts" for c in cols}}))
        if res.preview is None or res.preview.image is None:
            res.preview = Preview(x=energy, y=next(iter(cols.values())), x_label="energy (keV)", y_label="counts",
                                  title=path.stem)

    @staticmethod
    def _eds(path: Path, res: TranslationResult, const: dict[str, Any]) -> None:
        data = read_bytes(path, 64 << 20)
        label = data.find(b"Live Time\0")
        if label < 0 or label + 80 + 2048 * 4 > len(data) or len(data) < 18:
            raise CorruptFile(f"{path.name}: no 'Live Time' block followed by a 2048-channel spectrum "
                              "(truncated or not a JEOL .EDS)")
        (days,) = struct.unpack_from("<d", data, 10)
        (live,) = struct.unpack_from("<d", data, label + 36)
        (gain,) = struct.unpack_from("<d", data, 250)
        orig: dict[str, Any] = {"@10 date (OLE days)": days, "Live Time": live, "@250 keV per channel": gain}
        if ole_date(days):
            const.setdefault("acquisition_date", ole_date(days))
        if np.isfinite(live):
            const.setdefault("live_time", live)
        if np.isfinite(gain) and 0 < gain < 1:
            const.setdefault("energy_per_channel", gain)
        progress.header_read({path.name: orig}, const)
        counts = np.frombuffer(data, "<u4", 2048, label + 80).astype(float)
        strings = [s.decode("latin-1") for s in re.findall(rb"[ -~]{3,}", data[label + 80 + 8192:])]
        orig["trailer strings"] = strings
        det = next((s for s in strings if re.fullmatch(r"EX\w+", s)), None)
        inst = next((s for s in strings if re.match(r"J[A-Z]{2}-\w", s)), None)
        lines = [f"{m[0]} {m[1]}" for s in strings for m in re.findall(r"(?<![A-Za-z])([A-Z][a-z]?) ([KLM])(?![a-z])", s)]
        const.setdefault("detector", det)
        const.setdefault("instrument", inst)
        if lines:
            const.setdefault("elements", ", ".join(dict.fromkeys(lines)))
        const["number_of_channels"] = 2048
        res.original[path.name] = orig
        res.used_keys += [f"{path.name}/{k}" for k in orig]
        energy = (num(const.get("energy_per_channel")) or 0.01) * np.arange(2048)
        res.tables.append(Table(path.stem, {"energy": energy, "counts": counts}, {"energy": "keV", "counts": "counts"}))
        res.preview = res.preview or Preview(x=energy, y=counts, x_label="energy (keV)", y_label="counts",
                                             title=path.stem)
