"""The labedge upload protocol (v1): topics, message encodings and limits. See docs/protocol.md.

Device -> receiver (the broker ACL lets a device write only under its own certificate CN):
  ``<prefix>/<device>/up/<package-id>/offer``  JSON: the bag's file list, sizes and sha256s
  ``<prefix>/<device>/up/<package-id>/chunk``  binary: a fixed header + bytes of the bag stream
Receiver -> device:
  ``<prefix>/<device>/down/<package-id>``      JSON: status / credit / stored / reoffer / rejected

A package is sent as ONE byte stream: its files in offer order, concatenated. Chunk ``seq``
covers bytes ``[seq*chunk_size, (seq+1)*chunk_size)`` of that stream, so a package of many small
files costs few messages and any chunk maps to (file, offset) pieces without extra metadata.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import re
import struct
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from agent.package.ids import PACKAGE_ID_RE

VERSION = 1
#: Every chunk starts with this header: magic, offer tag, seq, data length, sha256 of the data.
CHUNK_HEADER = struct.Struct(">4s8sII32s")
CHUNK_MAGIC = b"LEC1"
#: Bytes an MQTT PUBLISH adds around the payload (fixed header, topic, properties), generously.
PUBLISH_OVERHEAD = 1024
TAG_FILES = ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "tagmanifest-sha256.txt")
DEVICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
#: Characters refused in any path component of an offer (Windows-reserved, control, separators).
_BAD_NAME = re.compile(r'[\x00-\x1f<>:"|?*\\/]')
MAX_PATH = 1024
#: Longest path component most file systems take (ext4, XFS: 255 bytes; NTFS: 255 UTF-16 units).
MAX_NAME_BYTES = 255
#: What one offer may make a receiver keep (security finding 3): a receiver's cost must follow what
#: a device actually sends, not what it declares. The chunk bitmap is one byte per chunk, so at most
#: MAX_CHUNKS bytes per partial; a 1 TiB package fits with 1 MiB chunks (the uploader picks a chunk
#: size that keeps under the bound). Files are created when their first chunk arrives, so a file
#: list costs parsing only; MAX_FILES bounds that (a 1,500-file folder measurement is fine).
MIN_CHUNK_SIZE = 16 * 1024
MAX_CHUNK_SIZE = 256 * 1024 * 1024
MAX_CHUNKS = 1 << 20
MAX_FILES = 20_000


def chunk_size_for(total_bytes: int, wanted: int, max_payload: int) -> int:
    """The device's chunk size: ``wanted`` raised to the floor and to what keeps the chunk count
    within MAX_CHUNKS, never above what the broker takes (``max_payload``)."""
    size = max(wanted, MIN_CHUNK_SIZE, -(-total_bytes // MAX_CHUNKS))
    return min(size, max_payload, MAX_CHUNK_SIZE)
#: An offer names at most this many earlier packages it supersedes.
MAX_SUPERSEDES = 64


class ProtocolError(Exception):
    """A message that does not follow the protocol; the text says what is wrong."""


# -------------------------------------------------------------------------------- topics
def offer_topic(prefix: str, device: str, package_id: str) -> str:
    return f"{prefix}/{device}/up/{package_id}/offer"


def chunk_topic(prefix: str, device: str, package_id: str) -> str:
    return f"{prefix}/{device}/up/{package_id}/chunk"


def down_topic(prefix: str, device: str, package_id: str) -> str:
    return f"{prefix}/{device}/down/{package_id}"


def device_down_filter(prefix: str, device: str) -> str:
    return f"{prefix}/{device}/down/#"


def receiver_filter(prefix: str, share_group: str) -> str:
    return f"$share/{share_group}/{prefix}/+/up/#"


def parse_up_topic(prefix: str, topic: str) -> tuple[str, str, str]:
    """``<prefix>/<device>/up/<package-id>/<kind>`` -> (device, package_id, kind); the device comes
    from the topic, which the broker binds to the sender's certificate, never from a payload."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != prefix or parts[2] != "up" or parts[4] not in ("offer", "chunk"):
        raise ProtocolError(f"unexpected topic {topic!r}")
    device, package_id, kind = parts[1], parts[3], parts[4]
    if not DEVICE_RE.match(device):
        raise ProtocolError(f"topic {topic!r}: bad device id")
    if not PACKAGE_ID_RE.match(package_id):
        raise ProtocolError(f"topic {topic!r}: bad package id")
    return device, package_id, kind


def parse_down_topic(prefix: str, device: str, topic: str) -> str:
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != prefix or parts[1] != device or parts[2] != "down" \
            or not PACKAGE_ID_RE.match(parts[3]):
        raise ProtocolError(f"unexpected topic {topic!r}")
    return parts[3]


# -------------------------------------------------------------------------------- ranges
def to_ranges(seqs: Iterable[int]) -> list[list[int]]:
    """Sorted integers -> [[start, end_exclusive], ...] (compact on the wire)."""
    out: list[list[int]] = []
    for s in sorted(seqs):
        if out and out[-1][1] == s:
            out[-1][1] = s + 1
        elif not out or out[-1][1] < s:
            out.append([s, s + 1])
    return out


def iter_ranges(ranges: Any, limit: int) -> Iterator[int]:
    if not isinstance(ranges, list):
        raise ProtocolError("ranges must be a list of [start, end] pairs")
    for r in ranges:
        if not (isinstance(r, list) and len(r) == 2 and all(isinstance(x, int) for x in r)
                and 0 <= r[0] < r[1] <= limit):
            raise ProtocolError(f"bad range {r!r} (chunks are 0..{limit - 1})")
        yield from range(r[0], r[1])


# -------------------------------------------------------------------------------- offer
@dataclass(frozen=True)
class FileEntry:
    path: str       # relative, '/'-separated, checked by safe_rel_path
    size: int
    sha256: str


@dataclass(frozen=True)
class Offer:
    package_id: str
    chunk_size: int
    files: tuple[FileEntry, ...]
    tag: bytes                      # 8 bytes binding chunks to this exact offer
    supersedes: tuple[str, ...] = ()  # earlier packages of the same files (also in the bag's provenance)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def chunks(self) -> int:
        return -(-self.total_bytes // self.chunk_size)

    def chunk_len(self, seq: int) -> int:
        return min(self.chunk_size, self.total_bytes - seq * self.chunk_size)

    def pieces(self, seq: int) -> list[tuple[int, int, int]]:
        """(file index, offset in file, length) pieces that chunk ``seq`` covers."""
        starts = self._starts()
        pos, end = seq * self.chunk_size, seq * self.chunk_size + self.chunk_len(seq)
        i = bisect.bisect_right(starts, pos) - 1
        out = []
        while pos < end:
            while self.files[i].size == 0 or starts[i] + self.files[i].size <= pos:
                i += 1
            n = min(end, starts[i] + self.files[i].size) - pos
            out.append((i, pos - starts[i], n))
            pos += n
        return out

    def _starts(self) -> list[int]:
        cached = self.__dict__.get("_starts_cache")
        if cached is None:
            cached, pos = [], 0
            for f in self.files:
                cached.append(pos)
                pos += f.size
            object.__setattr__(self, "_starts_cache", cached)
        return cached

    def to_json(self, query: int = 0) -> bytes:
        """``query`` is a nonce the receiver echoes in its status reply (stale replies are ignored)."""
        return json.dumps({"v": VERSION, "type": "offer", "package_id": self.package_id, "q": query,
                           "chunk_size": self.chunk_size, "total_bytes": self.total_bytes, "chunks": self.chunks,
                           "tag": self.tag.hex(),
                           "files": [[f.path, f.size, f.sha256] for f in self.files],
                           **({"supersedes": list(self.supersedes)} if self.supersedes else {})},
                          separators=(",", ":")).encode()


def offer_tag(package_id: str, chunk_size: int, files: Iterable[FileEntry]) -> bytes:
    h = hashlib.sha256(f"{package_id}\n{chunk_size}\n".encode())
    for f in files:
        h.update(f"{f.path}\0{f.size}\0{f.sha256}\n".encode())
    return h.digest()[:8]


def make_offer(package_id: str, chunk_size: int, files: list[FileEntry],
               supersedes: Iterable[str] = ()) -> Offer:
    return Offer(package_id, chunk_size, tuple(files), offer_tag(package_id, chunk_size, files), tuple(supersedes))


def safe_rel_path(path: Any) -> str:
    """A bag-relative path from a hostile peer: tag file or data/..., no traversal, no odd names."""
    if not isinstance(path, str) or not path or len(path) > MAX_PATH:
        raise ProtocolError(f"bad file path {path!r}")
    parts = path.split("/")
    if path in TAG_FILES:
        return path
    if parts[0] != "data" or len(parts) < 2:
        raise ProtocolError(f"file path {path!r} is neither a BagIt tag file nor under data/")
    for p in parts:
        if p in ("", ".", "..") or _BAD_NAME.search(p) or p != p.rstrip(". "):
            raise ProtocolError(f"file path {path!r} has a disallowed component {p!r}")
        if len(p.encode("utf-8")) > MAX_NAME_BYTES:
            raise ProtocolError(f"file path {path!r}: the name {p[:40]!r}... is {len(p.encode('utf-8'))} bytes "
                                f"in UTF-8; file systems take at most {MAX_NAME_BYTES}")
    return path


def name_key(path: str) -> str:
    """How a case-insensitive, normalising file system (NTFS, APFS) sees a name: é (NFC) == é (NFD)."""
    return unicodedata.normalize("NFC", path).casefold()


def _check_file_vs_folder(entries: list[FileEntry]) -> None:
    """``data/a`` and ``data/a/b`` cannot both exist on disk: refuse the offer instead of failing later."""
    files = {name_key(e.path) for e in entries}
    for e in entries:
        parts = name_key(e.path).split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in files:
                raise ProtocolError(f"{e.path}: {'/'.join(e.path.split('/')[:i])} is both a file and a folder")


def parse_offer(package_id: str, payload: bytes, *, max_bytes: int, max_files: int = MAX_FILES) -> Offer:
    """Validate an offer from a device; raises ProtocolError naming the problem.

    Cheap for any input: a few checks per listed file, nothing per declared chunk."""
    try:
        msg = json.loads(payload)
    except ValueError as exc:
        raise ProtocolError(f"offer is not JSON: {exc}") from None
    if not isinstance(msg, dict) or msg.get("v") != VERSION or msg.get("type") != "offer":
        raise ProtocolError(f"not a v{VERSION} offer")
    if msg.get("package_id") != package_id:
        raise ProtocolError("offer's package_id differs from its topic")
    cs, files = msg.get("chunk_size"), msg.get("files")
    if not isinstance(cs, int) or isinstance(cs, bool) or not MIN_CHUNK_SIZE <= cs <= MAX_CHUNK_SIZE:
        raise ProtocolError(f"chunk_size {cs!r} is outside {MIN_CHUNK_SIZE}..{MAX_CHUNK_SIZE} bytes")
    if not isinstance(files, list) or not 0 < len(files) <= max_files:
        raise ProtocolError(f"the package has {len(files) if isinstance(files, list) else 'no'} files; a package "
                            f"may have 1..{max_files} (zip the folder, or split the measurement)")
    entries, seen = [], set()
    for item in files:
        if not (isinstance(item, list) and len(item) == 3):
            raise ProtocolError(f"bad file entry {item!r}")
        path, size, digest = safe_rel_path(item[0]), item[1], item[2]
        if not isinstance(size, int) or size < 0:
            raise ProtocolError(f"{path}: bad size {size!r}")
        if not isinstance(digest, str) or not SHA256_RE.match(digest):
            raise ProtocolError(f"{path}: bad sha256 {digest!r}")
        key = name_key(path)
        if key in seen:
            raise ProtocolError(f"{path}: listed twice (names are compared ignoring case and Unicode "
                                "normalisation, as Windows and macOS file systems do)")
        seen.add(key)
        entries.append(FileEntry(path, size, digest))
    _check_file_vs_folder(entries)
    missing = [t for t in TAG_FILES if t not in seen]
    if missing:
        raise ProtocolError(f"offer lacks the BagIt tag file(s) {', '.join(missing)}")
    sup = msg.get("supersedes", [])
    if not isinstance(sup, list) or len(sup) > MAX_SUPERSEDES or not all(
            isinstance(i, str) and PACKAGE_ID_RE.match(i) and i != package_id for i in sup):
        raise ProtocolError(f"supersedes must be a list of at most {MAX_SUPERSEDES} other package ids")
    sup = list(dict.fromkeys(sup))
    offer = make_offer(package_id, cs, entries, supersedes=sup)
    if offer.total_bytes > max_bytes:
        raise ProtocolError(f"package of {offer.total_bytes} bytes exceeds the receiver's limit of {max_bytes}")
    if offer.chunks > MAX_CHUNKS:
        raise ProtocolError(f"{offer.chunks} chunks of {cs} bytes exceed the limit of {MAX_CHUNKS} chunks "
                            "per package (use a larger chunk_size)")
    if msg.get("tag") != offer.tag.hex():
        raise ProtocolError("offer tag does not match its contents")
    return offer


# -------------------------------------------------------------------------------- chunks
def encode_chunk(tag: bytes, seq: int, data: bytes | memoryview) -> bytes:
    return CHUNK_HEADER.pack(CHUNK_MAGIC, tag, seq, len(data), hashlib.sha256(data).digest()) + bytes(data)


def decode_chunk(payload: bytes) -> tuple[bytes, int, memoryview]:
    """-> (tag, seq, data), the data's sha256 checked; raises ProtocolError."""
    if len(payload) < CHUNK_HEADER.size:
        raise ProtocolError("chunk shorter than its header")
    magic, tag, seq, length, digest = CHUNK_HEADER.unpack_from(payload)
    data = memoryview(payload)[CHUNK_HEADER.size:]
    if magic != CHUNK_MAGIC or length != len(data):
        raise ProtocolError("bad chunk header")
    if hashlib.sha256(data).digest() != digest:
        raise ProtocolError(f"chunk {seq}: sha256 mismatch (corrupted in transit)")
    return tag, seq, data


# -------------------------------------------------------------------------------- down messages
def down_message(kind: str, package_id: str, **fields: Any) -> bytes:
    return json.dumps({"v": VERSION, "type": kind, "package_id": package_id, **fields},
                      separators=(",", ":")).encode()


def parse_down(payload: bytes) -> dict[str, Any]:
    try:
        msg = json.loads(payload)
    except ValueError as exc:
        raise ProtocolError(f"receiver message is not JSON: {exc}") from None
    if not isinstance(msg, dict) or msg.get("v") != VERSION or not isinstance(msg.get("type"), str):
        raise ProtocolError("not a v1 receiver message")
    return msg
