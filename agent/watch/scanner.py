"""Walk a watched tree quickly (os.scandir), yielding (path, size, mtime_ns) of wanted files."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

from agent.watch.filters import FileFilter


class WatchRootUnavailable(Exception):
    """A watched folder cannot be listed (unplugged drive, share offline, permissions)."""


def scan_tree(root: Path, flt: FileFilter, *, recursive: bool = True,
              on_error: Callable[[Path, OSError], None] | None = None) -> Iterator[tuple[Path, int, int]]:
    try:
        top = os.scandir(root)
    except OSError as exc:
        raise WatchRootUnavailable(f"{root}: watch folder cannot be read ({exc.strerror})") from None
    stack = [top]
    while stack:
        it = stack.pop()
        with it:
            for entry in it:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if recursive and not flt.excluded_dir(entry.name):
                            try:
                                stack.append(os.scandir(entry.path))
                            except OSError as exc:
                                if on_error:
                                    on_error(Path(entry.path), exc)
                        continue
                    if not entry.is_file(follow_symlinks=False):
                        continue  # symlinks, devices, sockets: never follow out of the watched tree
                    path = Path(entry.path)
                    if not flt.wants(path):
                        continue
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    if on_error:
                        on_error(Path(entry.path), exc)
                    continue
                yield path, st.st_size, st.st_mtime_ns
