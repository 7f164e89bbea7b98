"""Rigaku settings found by label, not by index: the attenuator axis and the detector distance.

The index of an axis differs between instruments and software generations (the attenuator is
``*MEAS_COND_AXIS_*-26`` on one SmartLab, ``-35`` on another, ``Axes/Axis/38`` in a ``.rasx``),
and the display name may be Japanese (``アッテネータ``), so the axis is chosen by its internal
name first, its display name second. The value found is stored under a ``[label]`` key
(``*MEAS_COND_AXIS_POSITION[Attenuator]``), the vocabulary's ``originalName``; the indexed vendor
keys actually read are returned so the report's mapped counts stay true.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

_ATTENUATOR_NAMES = ("attenuator", "アッテネータ")
_RAS_AXIS = re.compile(r"^\*MEAS_COND_AXIS_NAME(_INTERNAL)?-(\d+)$")
_RAS_OPT = re.compile(r"^\*HW_R_OPT_NAME-(\d+)$")
_RASX_AXIS = re.compile(r"^Axes/Axis/(\d+)/@Name$")
_RASX_DIST = re.compile(r"^HWConfigurations/Distances/Distance/(\d+)/@To$")
#: (from, to) of the .rasx <Distance> elements we map, by their labels
DISTANCES = (("AttachmentStage", "Detector"), ("XrayGenerator", "AttachmentStage"))


def _is_attenuator(v: Any) -> bool:
    s = str(v or "").strip().lower()
    return s in _ATTENUATOR_NAMES


def by_label(src: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Derived ``[label]`` keys for one scan's flat vendor keys, and the vendor keys read."""
    out: dict[str, Any] = {}
    used: list[str] = []
    # .ras (and the RAS pairs embedded in .rasx): internal name beats the (translated) display name
    internal: dict[str, str] = {}
    display: dict[str, str] = {}
    for k, v in src.items():
        m = _RAS_AXIS.match(k)
        if m and _is_attenuator(v):
            (internal if m.group(1) else display)[m.group(2)] = k
    idx = next(iter(sorted(internal, key=int)), None) or next(iter(sorted(display, key=int)), None)
    if idx is not None:
        for field in ("POSITION", "UNIT", "OFFSET"):
            key = f"*MEAS_COND_AXIS_{field}-{idx}"
            if key in src:
                out[f"*MEAS_COND_AXIS_{field}[Attenuator]"] = src[key]
                used.append(key)
        used.append(internal.get(idx) or display[idx])
    for k, v in src.items():  # "標準アッテネータ|Standard Attenuator": the receiving-side optic
        m = _RAS_OPT.match(k)
        if m and "attenuator" in str(v).lower():
            out["*HW_R_OPT_NAME[Attenuator]"] = v
            used.append(k)
            break
    # .rasx <Axes><Axis Name="Attenuator" Position="Open" .../>
    for k, v in src.items():
        m = _RASX_AXIS.match(k)
        if m and _is_attenuator(v):
            for attr in ("Position", "Unit", "Offset", "State"):
                key = f"Axes/Axis/{m.group(1)}/@{attr}"
                if key in src:
                    out[f"Axes/Axis[Attenuator]/@{attr}"] = src[key]
                    used.append(key)
            used.append(k)
            break
    # .rasx <Distance From="AttachmentStage" To="Detector" Unit="mm" Value="331"/>
    for k, v in src.items():
        m = _RASX_DIST.match(k)
        if not m:
            continue
        base = f"HWConfigurations/Distances/Distance/{m.group(1)}"
        pair = (str(src.get(f"{base}/@From", "")), str(v))
        if pair in DISTANCES:
            for attr in ("Value", "Unit"):
                if f"{base}/@{attr}" in src:
                    out[f"HWConfigurations/Distances/Distance[{pair[0]}-{pair[1]}]/@{attr}"] = src[f"{base}/@{attr}"]
                    used.append(f"{base}/@{attr}")
            used += [k, f"{base}/@From"]
    return out, used
