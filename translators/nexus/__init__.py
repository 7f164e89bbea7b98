"""NeXus/HDF5 synchrotron files (NXmx, NXsas, NXstxm, NXxas ... and plain NeXus).

The vocabulary is a table of (NX_class of the parent group, dataset name) -> our key, so
any application definition maps the facility, beamline, energy, wavelength, times, sample
and detector it carries. Every dataset and attribute name is kept in `original` (values of
small ones; shape and dtype of big ones). Links to other files are never followed.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators.common import require_file, text
from translators.contract import Array, CorruptFile, Preview, Table, TranslationResult, UnsupportedFile, load_vocabulary
from translators.nexus.attenuation import attenuation
from translators.nexus.units import convert
from translators.nexus.walk import MAX_TABLE_POINTS, Node, Walk, read_array, walk

__all__ = ["NexusTranslator"]

_SIG = b"\x89HDF\r\n\x1a\n"
# key -> candidate (parent NX_class, dataset name) in priority order, and target unit.
_STRINGS: dict[str, list[tuple[str, str]]] = {
    "definition": [("NXentry", "definition")], "title": [("NXentry", "title")],
    "facility": [("NXsource", "facility_name"), ("NXsource", "name")],
    "instrument_name": [("NXinstrument", "name")],
    "source_type": [("NXsource", "type")], "probe": [("NXsource", "probe")],
    "start_time": [("NXentry", "start_time")], "end_time": [("NXentry", "end_time")],
    "sample_name": [("NXsample", "name"), ("NXsample", "sample_name")],
    "user": [("NXuser", "name"), ("NXuser", "username")],
    "proposal": [("NXuser", "proposal_number"), ("NXentry", "proposal_id")],
    "experiment_id": [("NXentry", "experiment_identifier")],
    "program": [("NXentry", "program_name")], "scan_command": [("NXentry", "scan_command")],
    "sensor_material": [("NXdetector", "sensor_material")],
    "scan_type": [("NXdata", "stxm_scan_type"), ("NXentry", "scan_type")],
    "attenuator_type": [("NXattenuator", "type")], "attenuator_status": [("NXattenuator", "status")],
}
_NUMBERS: dict[str, tuple[list[tuple[str, str]], str]] = {
    "ring_energy": ([("NXsource", "energy")], "GeV"),
    "ring_current": ([("NXsource", "current")], "mA"),
    "incident_energy": ([("NXmonochromator", "energy"), ("NXbeam", "incident_energy"),
                         ("NXbeam", "energy"), ("NXmonitor", "energy")], "keV"),
    "wavelength": ([("NXmonochromator", "wavelength"), ("NXbeam", "incident_wavelength"),
                    ("NXbeam", "wavelength"), ("NXcrystal", "wavelength")], "Angstrom"),
    "sample_temperature": ([("NXsample", "temperature")], "K"),
    "detector_distance": ([("NXdetector", "distance")], "mm"),
    "pixel_size_x": ([("NXdetector", "x_pixel_size")], "mm"),
    "pixel_size_y": ([("NXdetector", "y_pixel_size")], "mm"),
    "sensor_thickness": ([("NXdetector", "sensor_thickness")], "mm"),
    "attenuator_thickness": ([("NXattenuator", "thickness")], "mm"),
    "count_time": ([("NXdetector", "count_time"), ("NXmonitor", "preset"),
                    ("NXdata", "count_time")], "s"),
}
_PLAIN_NUMBERS = {"beam_center_x": ("NXdetector", "beam_center_x"),
                  "beam_center_y": ("NXdetector", "beam_center_y"),
                  "attenuator_transmission": ("NXattenuator", "attenuator_transmission"),
                  "attenuator_selection": ("NXattenuator", "selection")}
_ROOT = {"nexus_version": "NeXus_version", "hdf5_version": "HDF5_Version", "creator": "creator",
         "file_time": "file_time"}


def _is_hdf4(p: Path) -> bool:
    """HDF4 magic number 0x0e031301 (h5py cannot open these)."""
    from translators.safeio import read_head

    return read_head(p, 4) == b"\x0e\x03\x13\x01"


def _is_hdf5(p: Path) -> bool:
    with open(p, "rb") as fh:
        # HDF5 allows a user block (power of two >= 512 bytes) before the superblock;
        # SLS PolLux writes a 32 KiB one holding an XMP packet.
        for off in (0, *(512 << k for k in range(12))):
            fh.seek(off)
            if fh.read(8) == _SIG:
                return True
    return False


class NexusTranslator:
    name = "nexus"
    version = "1.0.0"
    description = "NeXus/HDF5 synchrotron and neutron files (.nxs, .h5, .hdf5)"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        best = 0.0
        for p in paths:
            try:
                if _is_hdf4(Path(p)):
                    best = max(best, 0.4)  # ours to explain: HDF4 NeXus, not supported
                    continue
                if not _is_hdf5(Path(p)):
                    continue
                best = max(best, 0.5)
                import h5py
                with h5py.File(p, "r", locking=False) as f:
                    if "NX_class" in f.attrs or any(
                            b"NXentry" in bytes(np.asarray(f[k].attrs.get("NX_class", b"")).tobytes())
                            for k in list(f.keys())[:20]
                            if isinstance(f.get(k, getlink=True), h5py.HardLink)):
                        best = max(best, 0.95)
            except Exception:  # never raise from sniff
                continue
        return best

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        hdf4 = next((Path(p) for p in paths if _is_hdf4(Path(p))), None)
        if hdf4 is not None and not any(_is_hdf5(Path(p)) for p in paths):
            raise UnsupportedFile(f"{hdf4.name}: an HDF4 file (NeXus 1.x container); HDF4 is not supported, "
                                  "only HDF5 NeXus is (convert with the HDF Group's h4toh5 tool); "
                                  "the raw file is kept unchanged")
        path = require_file(paths, _is_hdf5, "no HDF5 file (missing the HDF5 signature)")
        import h5py
        try:
            f = h5py.File(path, "r", locking=False)
        except OSError as e:
            raise CorruptFile(f"{path.name}: HDF5 file cannot be opened ({e}); truncated or damaged") from None
        with f:
            try:
                w = walk(f)
            except (OSError, RuntimeError, KeyError, ValueError) as e:
                raise CorruptFile(f"{path.name}: damaged HDF5 structure ({e})") from None
            res = TranslationResult(warnings=[f"{path.name}: {m}" for m in w.warnings])
            entries = [p for p, g in w.groups.items() if g["class"] == "NXentry" and p.count("/") == 1]
            if not entries:
                res.warnings.append(f"{path.name}: no NXentry group; plain HDF5 mapped by name only")
            _USED.clear()
            res.constant = _constant(w, entries, res.warnings, path.name)
            _data(w, entries, res)
            res.original = _original(w)
            res.used_keys = [f"datasets/{p}/{leaf}" for p in _USED for leaf in ("value", "attrs/units")]
            res.used_keys += [f"root_attrs/{a}" for a in _ROOT.values()]
        return res


def _find(w: Walk, entry: str | None, cls: str, name: str) -> Node | None:
    for p, n in w.datasets.items():
        if entry and not p.startswith(entry + "/"):
            continue
        if n.name == name and n.parent_class == cls and n.value is not None:
            _USED.append(n.path)
            return n
    return None


#: dataset paths a vocabulary term was read from, for the report's true mapped/unmapped counts
_USED: list[str] = []


def _text(v: Any) -> str | None:
    """HDF5 string arrays (several authors, several lines) read as one text."""
    return text(" ".join(str(x) for x in v) if isinstance(v, list) else v)


def _constant(w: Walk, entries: list[str], warnings: list[str], fname: str) -> dict[str, Any]:
    c: dict[str, Any] = {}
    entry = entries[0] if entries else None
    if entry:
        c["entry_name"] = entry.lstrip("/")
        c["number_of_entries"] = len(entries)
        if len(entries) > 1:
            warnings.append(f"{fname}: {len(entries)} NXentry groups; metadata taken from {entry}")
    for key, cands in _STRINGS.items():
        for cls, name in cands:
            n = _find(w, entry, cls, name)
            if n is not None and _text(n.value):
                c[key] = _text(n.value)
                break
    for key, (cands, unit) in _NUMBERS.items():
        for cls, name in cands:
            n = _find(w, entry, cls, name)
            if n is None or not isinstance(n.value, (int, float)):
                continue
            v, note = convert(float(n.value), n.attrs.get("units"), unit, key)
            if v is not None:
                c[key] = v
                if note:
                    warnings.append(f"{fname}: {n.path}: {note}")
                break
    for key, (cls, name) in _PLAIN_NUMBERS.items():
        n = _find(w, entry, cls, name)
        if n is not None and isinstance(n.value, (int, float)):
            c[key] = float(n.value)
    c.update({k: v for k, v in attenuation(w, entry).items() if k not in c})
    if "wavelength" not in c and c.get("incident_energy"):
        c["wavelength"] = round(12.398419843 / c["incident_energy"], 6)  # λ[Å] = hc / E[keV]
    if "incident_energy" not in c and c.get("wavelength"):
        c["incident_energy"] = round(12.398419843 / c["wavelength"], 6)
    bl = _find(w, entry, "NXsource", "facility_beamline")
    st = _find(w, entry, "NXsource", "facility_station")
    if bl is not None and _text(bl.value):
        c["beamline"] = _text(bl.value) + (f"-{_text(st.value)}" if st is not None and _text(st.value) else "")
    elif c.get("instrument_name"):
        c["beamline"] = c["instrument_name"]
    for key, attr in _ROOT.items():
        if _text(w.root_attrs.get(attr)):
            c[key] = _text(w.root_attrs[attr])
    for key in ("start_time", "end_time", "file_time"):
        if key in c and not re.match(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", c[key]):
            c.pop(key)  # empty or free-text times stay in `original` only
        elif key in c:
            c[key] = c[key].replace(" ", "T", 1)
    dets = [p.rsplit("/", 1)[-1] for p, g in w.groups.items()
            if g["class"] == "NXdetector" and (not entry or p.startswith(entry + "/"))]
    if dets:
        c["detector"] = _text(", ".join(dets[:8]) + (" ..." if len(dets) > 8 else ""))
    model = _detector_model(w, entry)
    if model:
        c["detector_model"] = model
    if w.links:
        ext = [p for p, s in w.links.items() if s.startswith("external")]
        if ext:
            c["skipped_links"] = _text("; ".join(ext[:10]))
    return c


def _detector_model(w: Walk, entry: str | None) -> str | None:
    for cls in ("NXdetector", "NXdata"):
        for name in ("local_name", "model", "description"):
            n = _find(w, entry, cls, name)
            if n is not None and _text(n.value) and _text(n.value) not in ("DetectorBase", " "):
                s = _text(n.value) or ""
                mk = _find(w, entry, cls, "make")
                if mk is not None and _text(mk.value) and _text(mk.value).lower() not in s.lower():
                    s = f"{_text(mk.value)} {s}"
                return s
    return None


def _data(w: Walk, entries: list[str], res: TranslationResult) -> None:
    """NXdata groups: 1-D signals -> one Table per group; 2-D+ -> Array (+ image preview)."""
    for gpath, g in w.groups.items():
        if g["class"] != "NXdata":
            continue
        members = {n.name: n for p, n in w.datasets.items() if p.rsplit("/", 1)[0] == gpath}
        ext = [p for p in w.links if p.rsplit("/", 1)[0] == gpath]
        sig_name = _signal(g["attrs"], members)
        tag = re.sub(r"[^A-Za-z0-9]+", "_", gpath.strip("/")).strip("_")[:60] or "data"
        sig = members.get(sig_name) if sig_name else None
        if sig is not None and sig.dset.ndim >= 2:
            arr = read_array(sig, w)
            if arr is not None:
                res.arrays.append(Array(name=tag, data=arr, attrs={
                    k: v for k, v in sig.attrs.items() if isinstance(v, (str, int, float))}))
                res.constant.setdefault("main_data_shape", " x ".join(map(str, arr.shape)))
                if res.preview is None:
                    img = arr if arr.ndim == 2 else arr.reshape(-1, *arr.shape[-2:])[0]
                    res.preview = Preview(image=img, title=f"{gpath} ({sig.name})")
            continue
        cols = _one_d(members, w)
        if not cols:
            if ext:
                res.warnings.append(f"{gpath}: signal is an external link; nothing tabulated")
            continue
        axes = _axes(g["attrs"], members)
        order = [a for a in axes if a in cols] + [k for k in cols if k not in axes]
        units = {k: _text(members[k].attrs.get("units")) for k in order}
        res.tables.append(Table(name=tag, columns={k: cols[k] for k in order}, units=units))
        if res.preview is None and len(order) > 1:
            y = sig_name if sig_name in cols else order[1]
            res.preview = Preview(x=cols[order[0]], y=cols[y], x_label=order[0], y_label=y,
                                  title=gpath)


def _signal(attrs: dict[str, Any], members: dict[str, Node]) -> str | None:
    s = attrs.get("signal")
    if isinstance(s, str) and s:
        return s
    for name, n in members.items():  # NeXus 2 style: signal=1 on the dataset
        if str(n.attrs.get("signal", "")) == "1":
            return name
    return None


def _axes(attrs: dict[str, Any], members: dict[str, Node]) -> list[str]:
    a = attrs.get("axes")
    if isinstance(a, str):
        return [x for x in re.split(r"[:, ]+", a) if x and x != "."]
    if isinstance(a, list):
        return [str(x) for x in a if str(x) != "."]
    return [n for n, m in members.items() if str(m.attrs.get("primary", "")) == "1"
            or str(m.attrs.get("axis", "")) == "1"]


def _one_d(members: dict[str, Node], w: Walk) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    lengths: dict[int, int] = {}
    for name, n in members.items():
        d = n.dset
        if d.ndim == 1 and 1 < d.shape[0] <= MAX_TABLE_POINTS and d.dtype.kind in "biuf":
            lengths[d.shape[0]] = lengths.get(d.shape[0], 0) + 1
    if not lengths:
        return out
    length = max(lengths, key=lambda k: lengths[k])  # the scan length most columns share
    for name, n in members.items():
        if n.dset.ndim == 1 and n.dset.shape[0] == length and n.dset.dtype.kind in "biuf":
            arr = read_array(n, w)
            if arr is not None:
                out[name] = arr
    return out


def _original(w: Walk) -> dict[str, Any]:
    ds: dict[str, Any] = {}
    for p, n in w.datasets.items():
        entry: dict[str, Any] = {}
        if n.value is not None:
            entry["value"] = n.value
        else:
            entry["shape"] = list(n.shape)
            entry["dtype"] = n.dtype
        if n.attrs:
            entry["attrs"] = n.attrs
        if not n.readable:
            entry["not_read"] = True
        ds[p] = entry
    return {"root_attrs": w.root_attrs,
            "groups": {p: g for p, g in w.groups.items()},
            "datasets": ds, "links": w.links}
