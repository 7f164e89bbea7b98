"""Copy a file into the spool, hashing it on the way: every byte is read exactly once."""
from __future__ import annotations

import errno
import hashlib
import os
import queue
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable


from agent.package.confined import OutsideWatchedFolder, open_confined

CHUNK = 4 * 1024 * 1024
#: Files at least this big are copied by two threads (see ``_pipelined``); 3 buffers in flight.
PIPELINE_MIN = 16 * 1024 * 1024
PIPELINE_BUFFERS = 3
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


class SourceChanged(Exception):
    """The instrument file changed or vanished while it was being copied; try again once settled."""


class SourceUnreadable(Exception):
    """The instrument file exists but cannot be opened for reading (permissions, locked by its writer)."""


@dataclass(frozen=True)
class CopiedFile:
    source: Path
    dest: Path
    size: int
    mtime_ns: int
    sha256: str


class SourceOutsideRoot(SourceUnreadable):
    """The file's path leads out of the watched folder (symlinked sub-folder, foreign hard link)."""


def copy_and_hash(src: Path, dest: Path, *, progress: Callable[[int], None] | None = None,
                  expect: tuple[int, int] | None = None, fsync: bool = True,
                  root: Path | None = None) -> CopiedFile:
    """Copy ``src`` to ``dest`` (new file), returning its sha256; fsyncs ``dest`` unless the caller
    does it later (the builder fsyncs the whole bag once, so the disk writes back meanwhile).

    Raises SourceChanged if ``src`` disappears, is no longer the settled ``expect`` (size, mtime_ns)
    or its size/mtime moves during the copy, and
    OSError (e.g. ENOSPC) for problems on our side; ``dest`` is removed in both cases.
    """
    try:
        # O_NOFOLLOW/O_NONBLOCK: a path swapped for a symlink or a FIFO since it settled is
        # neither followed out of the watched tree nor allowed to block the pipeline. With ``root``
        # every component is checked (agent/package/confined.py), not only the last one.
        fin = os.fdopen(open_confined(root, src) if root is not None else os.open(src, _OPEN_FLAGS), "rb")
    except OutsideWatchedFolder as exc:
        raise SourceOutsideRoot(f"{exc.strerror}") from None
    except FileNotFoundError:
        raise SourceChanged(f"{src}: vanished before it could be copied") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SourceChanged(f"{src}: was replaced by a symbolic link; links are never followed") from None
        raise SourceUnreadable(f"{src}: cannot be read ({exc.strerror or exc}); "
                               "it will be retried, check the file's permissions") from None
    h = hashlib.sha256()
    copied = 0
    try:
        with fin:
            before = os.fstat(fin.fileno())
            if not stat.S_ISREG(before.st_mode):
                raise SourceChanged(f"{src}: is no longer a regular file")
            if expect is not None and (before.st_size, before.st_mtime_ns) != tuple(expect):
                # It changed after it settled (e.g. while the measurement waited for intake):
                # taking it now could catch the writer mid-way, so it must settle again.
                raise SourceChanged(f"{src}: changed after it settled ({expect[0]} -> {before.st_size} bytes); "
                                    "it will be taken again once it settles")
            with open(dest, "xb", buffering=0) as fout:
                if before.st_size >= PIPELINE_MIN:
                    copied = _pipelined(fin, fout, h, progress)
                else:
                    copied = _sequential(fin, fout, h, progress)
                if fsync:
                    os.fsync(fout.fileno())
            after = os.fstat(fin.fileno())
        try:
            now = os.lstat(src)
        except FileNotFoundError:
            now = None
        if (copied != before.st_size or after.st_size != before.st_size or after.st_mtime_ns != before.st_mtime_ns
                or now is None or now.st_size != before.st_size or now.st_mtime_ns != before.st_mtime_ns):
            raise SourceChanged(f"{src}: changed while it was being copied ({before.st_size} -> "
                                f"{copied} bytes read); it will be taken again once it settles")
    except BaseException:
        try:
            os.unlink(dest)
        except FileNotFoundError:
            pass
        raise
    return CopiedFile(src, dest, copied, before.st_mtime_ns, h.hexdigest())


def _sequential(fin: BinaryIO, fout: BinaryIO, h: "hashlib._Hash", progress: Callable[[int], None] | None) -> int:
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    copied = 0
    while n := fin.readinto(buf):
        h.update(view[:n])
        _write_all(fout, view[:n])
        copied += n
        if progress is not None:
            progress(n)
    return copied


def _pipelined(fin: BinaryIO, fout: BinaryIO, h: "hashlib._Hash", progress: Callable[[int], None] | None) -> int:
    """An I/O thread reads and writes each buffer while this thread hashes the one before:
    sha256 and file I/O both release the GIL, so a big copy costs about max(hash, I/O) instead
    of their sum. Each buffer is still read from the source exactly once."""
    free: "queue.Queue[bytearray | None]" = queue.Queue()
    for _ in range(PIPELINE_BUFFERS):
        free.put(bytearray(CHUNK))
    filled: "queue.Queue[tuple[bytearray, int] | BaseException | None]" = queue.Queue()
    stop = threading.Event()

    def io() -> None:
        try:
            while not stop.is_set():
                buf = free.get()
                if buf is None:
                    break
                n = fin.readinto(buf)
                if not n:
                    break
                _write_all(fout, memoryview(buf)[:n])
                filled.put((buf, n))
        except BaseException as exc:  # ENOSPC, read errors: raised by the hashing thread
            filled.put(exc)
            return
        filled.put(None)

    t = threading.Thread(target=io, name="copy-io", daemon=True)
    t.start()
    copied = 0
    try:
        while (item := filled.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            buf, n = item
            h.update(memoryview(buf)[:n])
            copied += n
            if progress is not None:
                progress(n)
            free.put(buf)
    finally:
        stop.set()
        free.put(None)  # wakes the I/O thread if it waits for a buffer
        t.join()
    return copied


def _write_all(fout: BinaryIO, data: memoryview) -> None:
    while data:  # an unbuffered write may be partial
        n = fout.write(data)
        data = data[n:]


def write_fully(fd: int, data: bytes | memoryview, offset: int | None = None) -> None:
    """os.write/os.pwrite until every byte is written. A nearly full disk can take part of a write
    WITHOUT an error; counting that as done leaves a hole that only a sha256 check finds later."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view) if offset is None else os.pwrite(fd, view, offset)
        if n <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[n:]
        if offset is not None:
            offset += n


def hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()
