"""Turn settled files into measurements: one file, same stem, or one folder per measurement."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from agent.measurement import Measurement, SourceFile
from agent.watch.settle import Settled


@dataclass
class _Open:
    files: dict[Path, Settled] = field(default_factory=dict)
    last_change: float = 0.0
    marker_seen: bool = False


class Grouper:
    """Collects settled files into groups and releases complete ones.

    A group is complete when no file of it is still settling and it has been quiet for
    ``quiet_seconds`` (stem and folder modes), or at once when its marker file arrives (folder).
    """

    def __init__(self, instrument_id: str, root: Path, mode: str, quiet_seconds: float,
                 clock=time.monotonic) -> None:
        self.instrument_id, self.root, self.mode = instrument_id, root, mode
        self.quiet_seconds = quiet_seconds
        self.clock = clock
        self.open: dict[str, _Open] = {}

    def key_of(self, path: Path) -> str:
        rel = path.relative_to(self.root)
        if self.mode == "stem":
            return str(path.parent / _stem(path.name))
        if self.mode == "folder" and len(rel.parts) > 1:
            return str(self.root / rel.parts[0])
        return str(path)

    def add(self, f: Settled, *, is_marker: bool = False) -> None:
        key = self.key_of(f.path)
        g = self.open.setdefault(key, _Open())
        g.files[f.path] = f
        g.last_change = self.clock()
        g.marker_seen = g.marker_seen or is_marker

    def touch(self, path: Path) -> None:
        """A member is still settling: keep its group open."""
        g = self.open.get(self.key_of(path))
        if g is not None:
            g.last_change = self.clock()

    def ready(self, still_pending: set[Path]) -> list[Measurement]:
        now = self.clock()
        out = []
        busy = {self.key_of(p) for p in still_pending}
        for key, g in list(self.open.items()):
            if key in busy:
                continue
            single = self.mode == "file" or (self.mode == "folder" and key in {str(p) for p in g.files})
            if single or g.marker_seen or now - g.last_change >= self.quiet_seconds:
                del self.open[key]
                out.append(self._measurement(key, g))
        return out

    def _measurement(self, key: str, g: _Open) -> Measurement:
        files = []
        base = Path(key) if self.mode == "folder" and Path(key) not in g.files else None
        for path, f in sorted(g.files.items()):
            rel = PurePosixPath(*path.relative_to(base).parts).as_posix() if base else path.name
            files.append(SourceFile(path=path, rel=rel, size=f.size, mtime_ns=f.mtime_ns))
        return Measurement(instrument_id=self.instrument_id, key=key, files=files, settled_at=time.time(),
                           watch_root=self.root)


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name.strip(".") else name
