"""Unit conversion for the unit strings SEM software writes next to values (µm, mbar, Secs...)."""
from __future__ import annotations

# unit -> (dimension, factor to the SI base of that dimension)
_UNITS: dict[str, tuple[str, float]] = {}
for dim, table in {
    "length": {"m": 1, "mm": 1e-3, "µm": 1e-6, "um": 1e-6, "nm": 1e-9, "pm": 1e-12, "fm": 1e-15,
               "Å": 1e-10, "A": None},
    "voltage": {"V": 1, "kV": 1e3, "mV": 1e-3, "MV": 1e6},
    "current": {"A": 1, "mA": 1e-3, "µA": 1e-6, "uA": 1e-6, "nA": 1e-9, "pA": 1e-12, "fA": 1e-15},
    "pressure": {"Pa": 1, "hPa": 100, "kPa": 1e3, "mbar": 100, "bar": 1e5, "Torr": 133.322368,
                 "torr": 133.322368, "mTorr": 0.133322368},
    "time": {"s": 1, "Secs": 1, "sec": 1, "secs": 1, "ms": 1e-3, "µs": 1e-6, "us": 1e-6,
             "ns": 1e-9, "min": 60, "mins": 60, "Mins": 60, "h": 3600, "Hours": 3600},
    "angle": {"deg": 1, "°": 1, "rad": 57.29577951308232, "mrad": 0.05729577951308232},
    "fraction": {"%": 1},
}.items():
    for unit, factor in table.items():
        if factor is not None and unit not in _UNITS:
            _UNITS[unit] = (dim, float(factor))


def _norm(unit: str) -> str:
    return unit.strip().replace("\u03bc", "µ")  # Greek mu and micro sign both occur


def convert(value: float, unit: str | None, target: str | None) -> float | None:
    """``value`` in ``unit`` expressed in ``target``; None when the units are incompatible."""
    if target is None:
        return value
    if unit is None or not unit.strip():
        return None
    src, dst = _UNITS.get(_norm(unit)), _UNITS.get(_norm(target))
    if src is None or dst is None or src[0] != dst[0]:
        return None
    return float(f"{value * src[1] / dst[1]:.10g}")
