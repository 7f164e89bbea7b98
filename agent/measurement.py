"""What flows through the pipeline: one measurement = a group of settled instrument files."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class SourceFile:
    path: Path          # absolute path in the instrument's folder (read only, never modified)
    rel: str            # name inside data/raw/ (posix separators)
    size: int
    mtime_ns: int


@dataclass
class Measurement:
    instrument_id: str
    key: str                          # group key: the file, the dir+stem, or the folder
    files: list[SourceFile]
    settled_at: float
    watch_root: Path
    sheet_file: Path | None = None    # a *.sheet.json dropped beside the data, if any
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def name(self) -> str:
        from agent.package.safe_names import path_text
        return path_text(Path(self.key).name)  # printable and storable even if the name is not UTF-8
