"""Unit conversion for the few NeXus quantities we map (energy, length, time, current, T)."""
from __future__ import annotations

from typing import Any

# unit spelling (lower-case) -> (dimension, factor to the SI-ish base of that dimension)
_UNITS: dict[str, tuple[str, float]] = {
    "ev": ("energy", 1.0), "kev": ("energy", 1e3), "mev": ("energy", 1e6), "gev": ("energy", 1e9),
    "a": ("length", 1e-10), "å": ("length", 1e-10), "angstrom": ("length", 1e-10),
    "angstroms": ("length", 1e-10), "nm": ("length", 1e-9), "um": ("length", 1e-6),
    "µm": ("length", 1e-6), "μm": ("length", 1e-6), "micron": ("length", 1e-6),
    "mm": ("length", 1e-3), "cm": ("length", 1e-2), "m": ("length", 1.0),
    "s": ("time", 1.0), "sec": ("time", 1.0), "ms": ("time", 1e-3), "us": ("time", 1e-6),
    "ma": ("current", 1e-3), "amp": ("current", 1.0), "ua": ("current", 1e-6),
    "k": ("temperature", 1.0), "kelvin": ("temperature", 1.0),
}
# Target unit for a key whose value carries no units attribute: what facilities usually write.
_ASSUMED = {"incident_energy": None, "ring_energy": "GeV", "ring_current": "mA",
            "wavelength": "Angstrom", "detector_distance": "mm", "pixel_size_x": "mm",
            "pixel_size_y": "mm", "sensor_thickness": "mm", "count_time": "s",
            "sample_temperature": "K"}


def convert(value: float, unit: Any, target: str, key: str) -> tuple[float | None, str | None]:
    """Return (value in target unit, note) or (None, reason) when the unit is foreign."""
    u = (str(unit).strip().lower() if unit is not None else "")
    t = _UNITS[target.lower()]
    if u in ("", " ", "none"):
        if key == "incident_energy":
            # No units attribute (e.g. GDA's NXbeam/incident_energy): X-ray beamline energies
            # below 200 are keV, above are eV.
            guess = "keV" if value < 200 else "eV"
            u = guess.lower()
            note = f"no units attribute; assumed {guess}"
        else:
            return round(value, 10), f"no units attribute; assumed {target}"
    else:
        note = None
    if u == "c" and t[0] == "temperature":
        return round(value + 273.15, 6), note
    src = _UNITS.get(u)
    if src is None or src[0] != t[0]:
        return None, f"unit {unit!r} cannot be converted to {target}"
    return round(value * src[1] / t[1], 10), note
