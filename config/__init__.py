"""Package data: the versioned config schema and the sample-sheet templates.

Read through importlib.resources so a wheel and a PyInstaller build find them the same way.
"""
from __future__ import annotations

import json
from importlib import resources
from typing import Any

CONFIG_SCHEMA_VERSION = 1


def config_schema() -> dict[str, Any]:
    text = resources.files(__name__).joinpath(f"schema/config.v{CONFIG_SCHEMA_VERSION}.schema.json").read_text("utf-8")
    return json.loads(text)


def templates_dir():  # -> importlib.resources.abc.Traversable
    return resources.files(__name__).joinpath("templates")
