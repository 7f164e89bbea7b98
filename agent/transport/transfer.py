"""Uploader-side state of one package transfer: its offer, which chunks to send, what is in flight.

Chunks are read from the bag on disk when sent, one at a time: memory use is bounded by the
credit window, never by the size of a file.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from agent.package.bag import encode_manifest_path, read_manifest  # noqa: F401
from wire.protocol import CHUNK_HEADER, CHUNK_MAGIC, TAG_FILES, FileEntry, Offer, make_offer
from wire.protocol import MAX_SUPERSEDES as P_MAX_SUPERSEDES


class BagUnreadable(Exception):
    """The package in the spool is missing files or inconsistent with its own manifests."""


def bag_files(bag: Path) -> list[FileEntry]:
    """Every file of the bag with its size and the sha256 its manifests state (tag files first).

    The whole-file hashes come from the bag's own manifests: the receiver checks the bag against
    them, and we compare the manifests' digests in its final ack, so they are verified end to end.
    """
    try:
        manifest = read_manifest(bag / "manifest-sha256.txt")
        tagmanifest = read_manifest(bag / "tagmanifest-sha256.txt")
        out = []
        for name in TAG_FILES:
            p = bag / name
            size = p.stat().st_size
            if name == "tagmanifest-sha256.txt":
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
            elif name in tagmanifest:
                digest = tagmanifest[name]
            else:
                raise BagUnreadable(f"{bag}: {name} is not listed in tagmanifest-sha256.txt")
            out.append(FileEntry(name, size, digest))
        data = sorted(p for p in (bag / "data").rglob("*") if p.is_file() or p.is_symlink())
        for p in data:
            if p.is_symlink():
                raise BagUnreadable(f"{p}: symbolic link inside a package")
            rel = p.relative_to(bag).as_posix()
            digest = manifest.get(encode_manifest_path(rel))
            if digest is None:
                raise BagUnreadable(f"{bag}: {rel} is not listed in manifest-sha256.txt")
            out.append(FileEntry(rel, p.stat().st_size, digest))
        if len(out) - len(TAG_FILES) != len(manifest):
            raise BagUnreadable(f"{bag}: manifest-sha256.txt lists files that are missing from data/")
        return out
    except OSError as exc:
        raise BagUnreadable(f"{bag}: cannot read the package ({exc.strerror or exc}: {exc.filename})") from None


@dataclass
class Transfer:
    package_id: str
    bag: Path
    offer: Offer
    started: float = field(default_factory=time.monotonic)
    query: int = 0                     # nonce of the latest offer; only its status reply counts
    state: str = "offering"            # offering -> sending -> waiting (all chunks confirmed) -> done
    to_send: deque[int] = field(default_factory=deque)
    outstanding: set[int] = field(default_factory=set)
    window: int = 1
    last_heard: float = field(default_factory=time.monotonic)
    last_offer: float = 0.0
    sent_chunks: int = 0               # chunk publishes, for the "resume re-sends only what is missing" check
    rounds: list[list[int]] = field(default_factory=list)  # [missing at a status, chunks sent since]
    confirmed: set[int] = field(default_factory=set)
    no_subscriber: bool = False
    busy_until: float = 0.0            # the receiver said "busy": offer again at this time
    busy_reason: str | None = None

    @classmethod
    def open(cls, package_id: str, bag: Path, chunk_size: int) -> "Transfer":
        return cls(package_id, bag, make_offer(package_id, chunk_size, bag_files(bag), supersedes=_supersedes(bag)))

    def read_chunk_message(self, seq: int) -> bytearray:
        """The chunk's wire message (header + data) in ONE buffer: read in place, hashed, no copies."""
        n_data = self.offer.chunk_len(seq)
        hdr = CHUNK_HEADER.size
        buf = bytearray(hdr + n_data)
        view = memoryview(buf)
        pos = hdr
        for i, off, n in self.offer.pieces(seq):
            path = self.bag / self.offer.files[i].path
            try:
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            except OSError as exc:
                raise BagUnreadable(f"{path}: cannot read ({exc.strerror})") from None
            try:
                got = os.preadv(fd, [view[pos:pos + n]], off) if hasattr(os, "preadv") \
                    else _pread_into(fd, buf, pos, n, off)
            finally:
                os.close(fd)
            if got != n:
                raise BagUnreadable(f"{path}: shorter than its manifest says (changed in the spool?)")
            pos += n
        CHUNK_HEADER.pack_into(buf, 0, CHUNK_MAGIC, self.offer.tag, seq, n_data,
                               hashlib.sha256(view[hdr:]).digest())
        return buf

    def done_bytes(self) -> int:
        return min(len(self.confirmed) * self.offer.chunk_size, self.offer.total_bytes)


def _pread_into(fd: int, buf: bytearray, pos: int, n: int, off: int) -> int:  # pragma: no cover - Windows
    os.lseek(fd, off, os.SEEK_SET)
    data = os.read(fd, n)
    buf[pos:pos + len(data)] = data
    return len(data)


def _supersedes(bag: Path) -> tuple[str, ...]:
    """The earlier packages this one replaces, as its provenance (inside the hashed bag) names them."""
    try:
        prov = json.loads((bag / "data" / "labedge" / "provenance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    ids = prov.get("supersedes") if isinstance(prov, dict) else None
    return tuple(i for i in ids if isinstance(i, str))[:P_MAX_SUPERSEDES] if isinstance(ids, list) else ()
