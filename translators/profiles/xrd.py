"""nims-xrd-rigaku: the RDE_XRD ``rigaku`` template (.ras, .rasx). Its terms are one vendor key
each, so the generic engine of ``translators.rde_template`` does the work."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from translators.profiles import Profile


def build(original: dict[str, Any], template: dict[str, Any], raw_files: list[Path]) -> tuple[dict[str, Any], list[str]]:
    from translators.rde_template import apply_template

    return apply_template(original, template)


PROFILES = (Profile("nims-xrd-rigaku", ("rigaku",), "RDE_XRD", "template/rigaku/tasksupport", build,
                    defs={"ras": "metadata-def_rigaku_ras.json", "rasx": "metadata-def_rigaku_rasx.json"}),)
