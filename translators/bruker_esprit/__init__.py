"""Bruker Esprit / Quantax ``.spx`` spectra (EDS on SEM/TEM, M4/M6 micro-XRF).

An .spx is XML (``<TRTSpectrum>``, usually WINDOWS-1252) with the hardware, detector, ESMA
(SEM) or XRF (tube) headers, the calibration and ``<Channels>`` as comma-separated counts.
Keys are read by label through :mod:`translators.bruker_esprit.trt`; Esprit times are in
milliseconds and converted to seconds; the calibration is in keV.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators import progress
from translators.bruker_esprit.trt import find_instance, flatten_trt
from translators.common import best_score, num, require_file, text
from translators.contract import CorruptFile, Preview, Table, TranslationResult, load_vocabulary
from translators.mapping import apply_vocabulary
from translators.safeio import local, parse_xml, read_bytes, read_head

MAX_BYTES = 256 << 20
ELEMENTS = ("", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl",
            "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se",
            "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb",
            "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er",
            "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At",
            "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U")


def _is_spx(p: Path) -> bool:
    head = read_head(p, 1024)
    return head.lstrip(b"\xef\xbb\xbf\r\n\t ").startswith(b"<?xml") and b"<TRTSpectrum" in head


def element_symbol(z: Any) -> str | None:
    n = num(z)
    return ELEMENTS[int(n)] if n is not None and n.is_integer() and 0 < n < len(ELEMENTS) else None


def esprit_date(date: Any, time: Any) -> str | None:
    """Esprit writes ``2.3.2018`` (day.month.year) and ``13:53:4``."""
    d, t = text(date), text(time) or "0:0:0"
    if not d:
        return None
    try:
        return datetime.strptime(f"{d} {t}", "%d.%m.%Y %H:%M:%S").isoformat()
    except ValueError:
        return None


def map_esprit(flat: dict[str, Any], vocab: dict[str, Any], name: str, warnings: list[str]) -> dict[str, Any]:
    """Vocabulary terms from flat Esprit keys, with Esprit's units and conventions applied."""
    const, w = apply_vocabulary(flat, vocab)
    warnings += [f"{name}: {x}" for x in w]
    for key in ("real_time", "live_time"):  # Esprit counts milliseconds
        if key in const:
            f = num(const[key])
            const[key] = f / 1000.0 if f is not None else const[key]
    date = next((v for k, v in flat.items() if k.endswith("TRTSpectrumHeader/Date")), None)
    time = next((v for k, v in flat.items() if k.endswith("TRTSpectrumHeader/Time")), None)
    iso = esprit_date(date, time)
    if iso:
        const["acquisition_date"] = iso
    elif date:
        warnings.append(f"{name}: date {date!r} {time!r} is not Esprit's day.month.year form; "
                        "kept verbatim in original_metadata.json")
    if "anode_atomic_number" in const:
        put = element_symbol(const["anode_atomic_number"])
        if put:
            const["anode_element"] = put
    return const


class BrukerEspritTranslator:
    name = "bruker-esprit"
    version = "1.0.0"
    description = "Bruker Esprit .spx spectra (EDS, micro-XRF)"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        return best_score(paths, lambda p: 0.95 if _is_spx(p) else 0.0)

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        path = require_file(paths, _is_spx, "no Bruker .spx file (XML with a <TRTSpectrum> root)")
        data = read_bytes(path, MAX_BYTES)
        root = parse_xml(data.rstrip(b"\0\r\n\t \x1a"), path.name)
        if local(root.tag) != "TRTSpectrum":
            raise CorruptFile(f"{path.name}: XML root is <{local(root.tag)}>, not <TRTSpectrum>")
        flat = flatten_trt(root)
        warnings: list[str] = []
        const = map_esprit(flat, self.vocabulary(), path.name, warnings)
        spec = find_instance(root, "TRTSpectrum")
        if spec is not None and spec.attrib.get("Name"):
            const["spectrum_name"] = text(spec.attrib["Name"])
        elements = [e.attrib.get("Name") for e in root.iter()
                    if local(e.tag) == "ClassInstance" and e.attrib.get("Type") == "TRTPSEElement"]
        if elements:
            const["elements"] = ", ".join(x for x in elements if x)
        progress.header_read(flat, const)
        channels = next((e.text for e in root.iter() if local(e.tag) == "Channels"), None)
        counts = np.array([], dtype=float)
        if channels:
            try:
                counts = np.array([float(v) for v in channels.replace("\n", "").split(",") if v.strip()])
            except ValueError:
                warnings.append(f"{path.name}: <Channels> holds values that are not numbers; no spectrum table")
        else:
            warnings.append(f"{path.name}: no <Channels> spectrum")
        n = num(const.get("number_of_channels"))
        if n is not None and len(counts) and int(n) != len(counts):
            warnings.append(f"{path.name}: ChannelCount says {int(n)}, <Channels> holds {len(counts)} values")
        off = num(const.get("energy_offset")) or 0.0
        gain = num(const.get("energy_per_channel")) or 0.01
        energy = off + gain * np.arange(len(counts))
        tables = [Table(path.stem, {"energy": energy, "counts": counts}, {"energy": "keV", "counts": "counts"})] \
            if len(counts) else []
        preview = Preview(x=energy, y=counts, x_label="energy (keV)", y_label="counts",
                          title=const.get("spectrum_name") or path.stem) if len(counts) > 1 else None
        used = [k for k in flat if k.endswith(("TRTSpectrumHeader/Date", "TRTSpectrumHeader/Time", "/@Name"))]
        return TranslationResult(constant=const, original=flat, tables=tables, preview=preview,
                                 warnings=warnings, used_keys=used, stem=path.stem)
