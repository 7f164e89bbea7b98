"""nims-aes-survey / nims-aes-depth: the RDE_AES templates (JEOL id/para/data sets)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from translators.profiles import Profile


def build(original: dict[str, Any], template: dict[str, Any], raw_files: list[Path]) -> tuple[dict[str, Any], list[str]]:
    return {"constant": {}, "variable": []}, ["AES profile: not implemented yet"]


PROFILES = (Profile("nims-aes-survey", ("jeol-aes",), "RDE_AES", "templates/AES-survey/tasksupport", build),
            Profile("nims-aes-depth", ("jeol-aes",), "RDE_AES", "templates/AES-depth/tasksupport", build))
