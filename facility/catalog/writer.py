"""The receiver's catalog writer: one thread that batches what the network thread hands it.

The network thread only enqueues (a slow or unreachable database must never stall transfers or
the keepalive). If the database is down, the batch is kept and tried again; past
:data:`MAX_BACKLOG` statuses the oldest are dropped (the next heartbeat replaces them),
never packages (which are also recorded again when a device re-offers a stored package)."""
from __future__ import annotations

import collections
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from facility.catalog.bag_facts import read_facts
from facility.catalog.catalog import Catalog, CatalogError, open_catalog
from wire import status as S
from wire.protocol import ProtocolError

log = logging.getLogger(__name__)

#: statuses kept while the database is slow or away (each <= 4 KiB: <= 80 MiB); the oldest go first
MAX_BACKLOG = 20_000
BATCH = 500
RETRY_SECONDS = 5.0


def default_catalog_path(store_dir: Path) -> Path:
    """Beside the packages; a device id cannot start with '.', so this never collides with one."""
    return Path(store_dir) / ".catalog.sqlite3"


class CatalogWriter(threading.Thread):
    def __init__(self, url: str, receiver: str) -> None:
        super().__init__(name="catalog-writer", daemon=True)
        self.url, self.receiver = url, receiver
        self.catalog: Catalog | None = None
        self._packages: collections.deque[tuple[str, str, Path, int | None, int | None, float]] = collections.deque()
        self._statuses: collections.deque[tuple[str, bytes, float]] = collections.deque()
        self._cv = threading.Condition()
        self._recent: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()
        self._halt = False
        self.written = {"packages": 0, "new_packages": 0, "statuses": 0, "dropped_statuses": 0,
                        "invalid_statuses": 0}
        self.last_error: str | None = None

    # ------------------------------------------------------------------ from the network thread
    def package_stored(self, device: str, pid: str, bag: Path, files: int | None = None,
                       nbytes: int | None = None) -> None:
        """``files``/``nbytes`` None: count them from the bag (an already stored package offered again)."""
        key = (device, pid)
        with self._cv:
            if key in self._recent:
                return  # a device that re-offers a stored package again and again costs nothing here
            self._recent[key] = None
            if len(self._recent) > 10_000:
                self._recent.popitem(last=False)
            self._packages.append((device, pid, bag, files, nbytes, time.time()))
            self._cv.notify()

    def status(self, device: str, payload: bytes) -> None:
        """A raw status message (at most wire.status.MAX_STATUS_BYTES); checked on this thread."""
        with self._cv:
            self._statuses.append((device, payload, time.time()))
            while len(self._statuses) > MAX_BACKLOG:
                self._statuses.popleft()
                self.written["dropped_statuses"] += 1
            self._cv.notify()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cv:
            self._halt = True
            self._cv.notify()
        self.join(timeout)

    def backlog(self) -> int:
        with self._cv:
            return len(self._packages) + len(self._statuses)

    # ------------------------------------------------------------------ the thread
    def run(self) -> None:
        while True:
            with self._cv:
                while not self._halt and not self._packages and not self._statuses:
                    self._cv.wait(1.0)
                if self._halt and (self.catalog is None or not (self._packages or self._statuses)):
                    break
                pk = [self._packages.popleft() for _ in range(min(BATCH, len(self._packages)))]
                st = [self._statuses.popleft() for _ in range(min(BATCH, len(self._statuses)))]
            try:
                self._write(pk, st)
                self.last_error = None
            except Exception as exc:  # noqa: BLE001 - keep the batch, say why, try again
                self.last_error = str(exc)
                log.warning("catalog %s: cannot write (%s); %d item(s) kept and tried again in %.0f s",
                            self.url if "://" not in self.url else self.url.split("@")[-1], exc,
                            len(pk) + len(st), RETRY_SECONDS)
                if self.catalog is not None:
                    self.catalog.close()
                    self.catalog = None
                with self._cv:
                    self._packages.extendleft(reversed(pk))
                    self._statuses.extendleft(reversed(st))
                    if self._halt:
                        break
                    self._cv.wait(RETRY_SECONDS)
        if self.catalog is not None:
            self.catalog.close()

    def _write(self, pk: list[tuple[str, str, Path, int | None, int | None, float]],
               st: list[tuple[str, bytes, float]]) -> None:
        if self.catalog is None:
            self.catalog = open_catalog(self.url)
            log.info("catalog: %s (%s)", self.catalog.url, self.catalog.kind)
        if pk:
            rows = [(d, pid, read_facts(bag, files=files, nbytes=n) if files is not None else
                     read_facts(bag, **_count(bag)), at, self.receiver) for d, pid, bag, files, n, at in pk]
            self.written["new_packages"] += self.catalog.record_packages(rows)
            self.written["packages"] += len(rows)
        if st:
            docs = []
            for device, payload, at in st:
                try:
                    docs.append((device, S.parse_status(payload, device), at))
                except ProtocolError as exc:
                    self.written["invalid_statuses"] += 1
                    log.warning("status from %s ignored: %s", device, exc)
            self.catalog.record_statuses(docs)
            self.written["statuses"] += len(docs)


def _count(bag: Path) -> dict[str, int]:
    files = nbytes = 0
    for dirpath, _dirs, names in os.walk(bag):
        for name in names:
            try:
                nbytes += os.lstat(os.path.join(dirpath, name)).st_size
                files += 1
            except OSError:
                pass
    return {"files": files, "nbytes": nbytes}


__all__ = ["CatalogWriter", "CatalogError", "default_catalog_path"]
