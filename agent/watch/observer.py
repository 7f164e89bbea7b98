"""watchdog observers whose handler only enqueues paths; the instrument watcher does the work."""
from __future__ import annotations

import os
import queue
import sys
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver


class EnqueueHandler(FileSystemEventHandler):
    def __init__(self, sink: "queue.SimpleQueue") -> None:
        self.sink = sink

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        dest = getattr(event, "dest_path", "")
        # (kind, path, dest): the kind tells agent.watch.writers whether a writer closed the file
        self.sink.put((event.event_type, Path(os.fsdecode(event.src_path)), Path(os.fsdecode(dest)) if dest else None))


def is_network_path(path: Path) -> bool:
    """UNC paths and network file systems lose events: use polling there."""
    s = str(path)
    if s.startswith("\\\\") or s.startswith("//"):
        return True
    if sys.platform.startswith("linux"):
        try:
            best, fstype = "", ""
            with open("/proc/mounts", encoding="utf-8") as fh:
                for line in fh:
                    parts = line.split()
                    if len(parts) >= 3 and (s + "/").startswith(parts[1].rstrip("/") + "/") and len(parts[1]) > len(best):
                        best, fstype = parts[1], parts[2]
            return fstype in {"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "9p"}
        except OSError:
            return False
    return False


def make_observer(root: Path, polling: str, poll_seconds: float) -> tuple[BaseObserver, bool]:
    use_polling = polling == "always" or (polling == "auto" and is_network_path(root))
    if use_polling:
        return PollingObserver(timeout=poll_seconds), True
    return Observer(), False
