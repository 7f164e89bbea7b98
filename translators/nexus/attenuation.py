"""Attenuation settings NeXus writers keep outside the ``NXattenuator`` base class.

The base class's own fields (type, status, thickness, attenuator_transmission) are read by the
vocabulary table in ``translators.nexus``. Facilities also write, by group *name*:

* GDA (Diamond): an ``NXcollection`` named like ``gains_atten`` holding ``Atten`` (the filter
  setting) and ``Transmission``;
* SLS PolLux (Focus): an ``NXpositioner`` ``RF_attenuation`` with ``value`` in dB: the
  attenuation of the RF excitation signal, not of the X-ray beam, so it is its own term.
"""
from __future__ import annotations

from typing import Any

from translators.nexus.walk import Walk


def _group(path: str) -> tuple[str, str]:
    """(parent group path, its name) of a dataset path."""
    parent = path.rsplit("/", 1)[0]
    return parent, parent.rsplit("/", 1)[-1]


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def attenuation(w: Walk, entry: str | None) -> dict[str, Any]:
    from translators.nexus import _USED  # the report's mapped counts

    out: dict[str, Any] = {}
    for p, n in w.datasets.items():
        if entry and not p.startswith(entry + "/"):
            continue
        parent, gname = _group(p)
        lname = gname.lower()
        value = _number(n.value)
        if value is None or "atten" not in lname:
            continue
        if n.parent_class == "NXcollection" and n.name == "Transmission":
            out.setdefault("attenuator_transmission", value)
        elif n.parent_class == "NXcollection" and n.name == "Atten":
            out.setdefault("attenuator_setting", value)
        elif (n.parent_class == "NXpositioner" and n.name == "value" and lname.startswith("rf")
              and str(n.attrs.get("units", "")).strip() == "dB"):
            out.setdefault("rf_attenuation", value)
        else:
            continue
        _USED.append(n.path)
    return out
