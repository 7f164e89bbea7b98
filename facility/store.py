"""The receiver's disk: partial transfers any receiver can continue, and the final atomic store.

Layout under ``store_dir`` (shared by every receiver of a share group; must be one filesystem):
  ``.partial/<device>/<package-id>/offer.json``        the validated offer
  ``.partial/<device>/<package-id>/bag/...``            files pre-sized, chunks written in place
  ``.partial/<device>/<package-id>/chunks-<rx>.log``    4-byte seq numbers, one log per receiver process
  ``.partial/<device>/<package-id>/lock``               flock: one receiver finalises at a time
  ``<device>/<yyyy>/<mm>/<package-id>/``                stored packages (yyyy/mm from the package id,
                                                        so a duplicate is found by one stat)
Why per-receiver logs: a shared subscription spreads one transfer's chunks over all receivers;
each appends only to its own log (no shared writer), and the union of the logs is the truth.
"""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import struct
import time
from pathlib import Path

from agent.package.copying import write_fully
from agent.package.verify import verify_package
from wire.protocol import Offer, ProtocolError, parse_offer
from agent.package.bag import read_manifest

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows receivers lock with msvcrt
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)
SEQ = struct.Struct(">I")
#: Descriptors one partial keeps open for writing chunks. Chunks walk through the files in order,
#: so a few suffice; holding one per file ran a 1,500-file package into "too many open files".
MAX_OPEN_FILES = 16


class PackageInvalid(Exception):
    """All chunks arrived but the bag does not verify; the reason goes back to the device."""


def final_dir(root: Path, device: str, package_id: str) -> Path:
    return root / device / package_id[0:4] / package_id[4:6] / package_id


def partial_dir(root: Path, device: str, package_id: str) -> Path:
    return root / ".partial" / device / package_id


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def stored_digests(final: Path) -> dict[str, str]:
    return {"manifest_sha256": hashlib.sha256((final / "manifest-sha256.txt").read_bytes()).hexdigest(),
            "tagmanifest_sha256": hashlib.sha256((final / "tagmanifest-sha256.txt").read_bytes()).hexdigest()}


class Partial:
    def __init__(self, root: Path, device: str, offer: Offer, instance: str) -> None:
        self.root, self.device, self.offer, self.instance = root, device, offer, instance
        self.dir = partial_dir(root, device, offer.package_id)
        self.have = bytearray(offer.chunks)
        self.n_have = 0
        self.log_pos: dict[str, int] = {}
        self.fds: dict[int, int] = {}
        self.own_log: int | None = None
        self.pending_acks: list[int] = []
        self.since_refresh = 0
        self.last_activity = time.monotonic()
        self.refresh()

    # -- creation --------------------------------------------------------------------------
    @classmethod
    def open_for_offer(cls, root: Path, device: str, offer: Offer, raw_offer: bytes, instance: str) -> "Partial":
        d = partial_dir(root, device, offer.package_id)
        existing = cls.load(root, device, offer.package_id, instance)
        if existing is not None:
            if existing.offer.tag == offer.tag:
                return existing
            # Same package id, different content or chunk size (re-chunked after a broker change):
            # the device is the authority on its own package, start again.
            existing.close()
            shutil.rmtree(d, ignore_errors=True)
        d.parent.mkdir(parents=True, exist_ok=True)
        tmp = d.parent / f".tmp-{offer.package_id}-{instance}"
        shutil.rmtree(tmp, ignore_errors=True)
        # No file is created here: each appears when its first chunk arrives (zero-length ones at the
        # end), so what a partial costs on disk follows what the device sent, not what it declared
        # (100,000 declared files used to be 100,000 inodes kept for a week).
        (tmp / "bag").mkdir(parents=True)
        (tmp / "offer.json").write_bytes(raw_offer)
        try:
            os.rename(tmp, d)
        except OSError:  # another receiver created it first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
        loaded = cls.load(root, device, offer.package_id, instance)
        if loaded is None:
            raise OSError(f"{d}: partial transfer vanished while being created")
        return loaded

    @classmethod
    def load(cls, root: Path, device: str, package_id: str, instance: str) -> "Partial | None":
        d = partial_dir(root, device, package_id)
        try:
            raw = (d / "offer.json").read_bytes()
        except FileNotFoundError:
            return None
        try:
            offer = parse_offer(package_id, raw, max_bytes=1 << 62)
        except ProtocolError as exc:
            log.error("%s: unreadable offer.json (%s); discarding the partial transfer", d, exc)
            shutil.rmtree(d, ignore_errors=True)
            return None
        return cls(root, device, offer, instance)

    # -- chunks ----------------------------------------------------------------------------
    def alive(self) -> bool:
        return (self.dir / "offer.json").exists()

    def _fd(self, i: int) -> int:
        fd = self.fds.get(i)
        if fd is None:
            if len(self.fds) >= MAX_OPEN_FILES:  # chunks move forward through the files: close the oldest
                old = next(iter(self.fds))
                os.close(self.fds.pop(old))
            path = self.dir / "bag" / self.offer.files[i].path
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
            self.fds[i] = fd
        return fd

    def write_chunk(self, seq: int, data: memoryview) -> bool:
        """Write chunk ``seq`` in place; False if we already had it (a duplicate)."""
        self.last_activity = time.monotonic()
        if self.have[seq]:
            return False
        pos = 0
        for i, off, n in self.offer.pieces(seq):
            write_fully(self._fd(i), data[pos:pos + n], off)  # a short write must not count as a chunk
            pos += n
        if self.own_log is None:
            self.own_log = os.open(self.dir / f"chunks-{self.instance}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                                   0o644)
            self.log_pos[f"chunks-{self.instance}.log"] = 0
        # The data is written before its seq is logged: a logged chunk is always on disk (or in the page
        # cache, which a process crash does not lose; the final sha256 checks catch a power loss).
        name = f"chunks-{self.instance}.log"
        try:
            written = os.write(self.own_log, SEQ.pack(seq))
            if written != SEQ.size:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.dir / name))
        except OSError:
            # A torn record in the middle of the log would shift every later one: cut it off (the
            # chunk is simply not logged, so it counts as missing and is sent again).
            os.ftruncate(self.own_log, self.log_pos[name])
            raise
        self.log_pos[name] += SEQ.size
        self.have[seq] = 1
        self.n_have += 1
        self.since_refresh += 1
        return True

    def refresh(self) -> None:
        """Merge what other receivers (or our earlier incarnations) logged since the last look."""
        self.since_refresh = 0
        try:
            names = [n for n in os.listdir(self.dir) if n.startswith("chunks-") and n.endswith(".log")]
        except FileNotFoundError:
            return
        for name in names:
            pos = self.log_pos.get(name, 0)
            try:
                with open(self.dir / name, "rb") as fh:
                    fh.seek(pos)
                    data = fh.read()
            except FileNotFoundError:
                continue
            usable = len(data) - len(data) % SEQ.size  # a torn last record from a killed writer is ignored
            for (seq,) in SEQ.iter_unpack(data[:usable]):
                if seq < len(self.have) and not self.have[seq]:
                    self.have[seq] = 1
                    self.n_have += 1
            self.log_pos[name] = pos + usable

    def should_refresh(self, window: int) -> bool:
        return self.offer.chunks - self.n_have <= 2 * window or self.since_refresh >= 64

    @property
    def complete(self) -> bool:
        return self.n_have >= self.offer.chunks

    @property
    def received_any(self) -> bool:
        return self.n_have > 0

    def missing_bytes(self) -> int:
        """Bytes still to come, in O(1): every missing chunk is full-size except perhaps the last."""
        chunks = self.offer.chunks
        if chunks == 0:
            return 0
        out = (chunks - self.n_have) * self.offer.chunk_size
        if not self.have[chunks - 1]:
            out -= self.offer.chunk_size - self.offer.chunk_len(chunks - 1)
        return out

    def missing_ranges(self) -> list[list[int]]:
        """[[start, end), ...] of chunks not yet here. bytearray.find runs in C, so the Python loop
        turns once per hole, never once per declared chunk."""
        have, n, out, pos = self.have, len(self.have), [], 0
        while pos < n:
            start = have.find(0, pos)
            if start < 0:
                break
            end = have.find(1, start)
            end = n if end < 0 else end
            out.append([start, end])
            pos = end
        return out

    def missing(self) -> list[int]:
        return [s for a, b in self.missing_ranges() for s in range(a, b)]

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()
        if self.own_log is not None:
            os.close(self.own_log)
            self.own_log = None

    # -- the end -----------------------------------------------------------------------------
    def finalize(self) -> dict[str, str] | None:
        """Verify and store atomically. None if another receiver holds the lock or chunks are missing.

        Raises PackageInvalid (the partial is discarded) when the complete bag does not verify.
        """
        final = final_dir(self.root, self.device, self.offer.package_id)
        try:
            lock_fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            return stored_digests(final) if final.is_dir() else None
        try:
            if not _try_lock(lock_fd):
                return None
            if final.is_dir():  # stored meanwhile (by another receiver): just tidy up
                self.discard()
                return stored_digests(final)
            self.refresh()
            if not self.complete or not self.alive():
                return None
            bag = self.dir / "bag"
            self._sync_bag(bag)
            self._verify(bag)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.rename(bag, final)
            fsync_path(final.parent)
            digests = stored_digests(final)
            self.discard()
            return digests
        finally:
            os.close(lock_fd)

    def _sync_bag(self, bag: Path) -> None:
        self.close()
        for f in self.offer.files:
            if f.size == 0 and not (bag / f.path).exists():  # zero-length files get no chunk
                (bag / f.path).parent.mkdir(parents=True, exist_ok=True)
                (bag / f.path).touch()
        for f in self.offer.files:
            fd = os.open(bag / f.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for d in sorted({(bag / f.path).parent for f in self.offer.files}, key=lambda p: -len(p.parts)):
            fsync_path(d)

    def _verify(self, bag: Path) -> None:
        want = {f.path: f.sha256 for f in self.offer.files}
        try:
            problems = []
            tm = hashlib.sha256((bag / "tagmanifest-sha256.txt").read_bytes()).hexdigest()
            if tm != want["tagmanifest-sha256.txt"]:
                problems.append("tagmanifest-sha256.txt differs from the offer")
            tags = read_manifest(bag / "tagmanifest-sha256.txt")
            payload = read_manifest(bag / "manifest-sha256.txt")
            for path, digest in want.items():
                stated = tags.get(path) if not path.startswith("data/") else payload.get(path)
                if path != "tagmanifest-sha256.txt" and stated != digest:
                    problems.append(f"{path}: sha256 in the offer differs from the bag's manifest")
            if len(payload) != sum(1 for p in want if p.startswith("data/")):
                problems.append("manifest-sha256.txt lists files the offer does not")
        except (OSError, UnicodeDecodeError) as exc:
            problems = [f"manifests unreadable: {exc}"]
        if not problems:
            res = verify_package(bag)  # bagit: every file's sha256 against the manifests, Payload-Oxum, layout
            problems = res.problems
        if problems:
            self.discard()
            raise PackageInvalid("; ".join(str(p).replace(str(bag), "<bag>") for p in problems[:5]))

    def discard(self) -> None:
        self.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _try_lock(fd: int) -> bool:
    if fcntl is None:  # pragma: no cover
        import msvcrt
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _never_progressed(d: Path) -> bool:
    """No receiver has logged a single chunk for this partial."""
    try:
        return not any(c.name.startswith("chunks-") and c.stat().st_size >= SEQ.size for c in d.iterdir())
    except FileNotFoundError:
        return False


def expire_partials(root: Path, max_age: float, now: float | None = None,
                    stalled_age: float | None = None) -> list[str]:
    """Remove partial transfers untouched for ``max_age`` seconds, and those that never received a
    chunk after ``stalled_age`` (an offer alone is not worth a week of disk); returns what was removed."""
    now = now or time.time()
    removed = []
    base = root / ".partial"
    if not base.is_dir():
        return removed
    for dev in base.iterdir():
        if not dev.is_dir():
            continue
        for d in dev.iterdir():
            try:
                newest = max([d.stat().st_mtime] + [c.stat().st_mtime for c in d.iterdir() if c.is_file()])
            except FileNotFoundError:
                continue
            if now - newest < max_age and not (stalled_age is not None and now - newest >= stalled_age
                                               and _never_progressed(d)):
                continue
            try:
                lock_fd = os.open(d / "lock", os.O_RDWR | os.O_CREAT, 0o644) if not d.name.startswith(".tmp-") else None
            except FileNotFoundError:
                continue
            try:
                if lock_fd is not None and not _try_lock(lock_fd):
                    continue
                shutil.rmtree(d, ignore_errors=True)
                removed.append(f"{dev.name}/{d.name}")
            finally:
                if lock_fd is not None:
                    os.close(lock_fd)
    if removed:
        log.info("expired %d abandoned partial transfer(s) older than %.0f s: %s", len(removed), max_age,
                 ", ".join(removed[:10]))
    return removed


def read_offer_bytes(d: Path) -> bytes:
    return (d / "offer.json").read_bytes()


def partial_ids(root: Path) -> list[tuple[str, str]]:
    base = root / ".partial"
    if not base.is_dir():
        return []
    return [(dev.name, d.name) for dev in sorted(base.iterdir()) if dev.is_dir()
            for d in sorted(dev.iterdir()) if d.is_dir() and not d.name.startswith(".tmp-")]
