"""Which files in a watched folder are instrument data."""
from __future__ import annotations

import fnmatch
import functools
import re
from pathlib import PurePath

SHEET_SUFFIX = ".sheet.json"


@functools.lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> "re.Pattern[str] | None":
    # One regex for all globs: a catch-up scan matches ~15 default excludes per file, 100k times.
    return re.compile("|".join(fnmatch.translate(p.lower()) for p in patterns)) if patterns else None


def _match(name: str, patterns: tuple[str, ...]) -> bool:
    rx = _compiled(tuple(patterns))
    return rx is not None and rx.match(name.lower()) is not None


class FileFilter:
    """include/exclude globs on the file name (case-insensitive, as on Windows)."""

    def __init__(self, include: tuple[str, ...], exclude: tuple[str, ...], marker: str | None = None) -> None:
        self.include = include or ("*",)
        self.exclude = exclude
        self.marker = marker

    def is_sheet(self, path: PurePath) -> bool:
        return path.name.lower().endswith(SHEET_SUFFIX)

    def is_marker(self, path: PurePath) -> bool:
        return self.marker is not None and _match(path.name, (self.marker,))

    def wants(self, path: PurePath) -> bool:
        name = path.name
        if self.is_sheet(path):
            return True  # handled by pairing, never packaged as raw data
        if _match(name, self.exclude):
            return False
        return self.is_marker(path) or _match(name, self.include)

    def excluded_dir(self, name: str) -> bool:
        # hidden/system folders and our own temp names are never measurement folders
        return name.startswith(".") or name in ("$RECYCLE.BIN", "System Volume Information")
