"""nims-xps-vamas: the RDE_XPS ``scienta_omicron`` template (ISO 14976 VAMAS files).

Its terms are VAMAS field names, computed ones included; ``translators.rde_template`` does the
work (header -> ``constant``, one ``variable`` row per block). The official-program bugs it does not
copy (``xray_power``, ``abscissa_end``) are listed in docs/rde.md.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from translators.profiles import Profile


def build(original: dict[str, Any], template: dict[str, Any], raw_files: list[Path]) -> tuple[dict[str, Any], list[str]]:
    from translators.rde_template import apply_template

    return apply_template(original, template)


PROFILES = (Profile("nims-xps-vamas", ("vamas",), "RDE_XPS", "template/scienta_omicron/tasksupport", build),)
