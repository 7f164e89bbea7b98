"""Names that always deliver: what a raw file is called inside a package, and how odd names are shown.

Anything an instrument (or a lab user) can create on the PC's file system is a legal source name,
but not every one survives the trip: ``50% Ni.txt`` is percent-encoded in the manifest (RFC 8493)
and bagit 1.9 and the receiver do not decode it; ``a:b?.txt`` or a trailing dot cannot exist on a
Windows store; a name that is not UTF-8 cannot go into SQLite, JSON or the log at all. So the file
is stored under a safe name and its original name is kept in provenance (``original_name``, with
undecodable bytes as ``\\xNN`` escapes); the measurement is never stopped by its name.
"""
from __future__ import annotations

import hashlib
import os
import re
import unicodedata

#: Characters never used in a stored name: Windows-reserved, path separators, '%' (manifest
#: percent-encoding), control characters, and U+FFFD (where bytes were not UTF-8).
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"|?*\\/%\ufffd]')
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$", re.IGNORECASE)
#: Room for a "~2" or "~hash" suffix under the 255-byte limit of one component.
MAX_COMPONENT_BYTES = 200


def path_text(name: str | os.PathLike[str]) -> str:
    """A str that can be stored and printed anywhere: bytes that were not UTF-8 become ``\\xNN``."""
    s = os.fspath(name)
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return os.fsencode(s).decode("utf-8", "backslashreplace")


def safe_component(name: str) -> str:
    raw = os.fsencode(name)
    text = unicodedata.normalize("NFC", raw.decode("utf-8", "replace"))
    safe = _UNSAFE.sub("_", text)
    stripped = safe.rstrip(". ")
    if stripped != safe:
        safe = stripped + "_" * (len(safe) - len(stripped))
    if safe in ("", ".", ".."):
        safe = "_" * max(1, len(safe))
    if _RESERVED.match(safe):
        safe = "_" + safe
    if len(safe.encode("utf-8")) > MAX_COMPONENT_BYTES:
        stem, dot, ext = safe.rpartition(".")
        if not dot or len(ext.encode()) > 16:
            stem, ext = safe, ""
        tag = "~" + hashlib.sha256(raw).hexdigest()[:8] + ("." + ext if ext else "")
        budget = MAX_COMPONENT_BYTES - len(tag.encode("utf-8"))
        stem = stem.encode("utf-8")[:budget].decode("utf-8", "ignore")
        safe = stem + tag
    return safe


def _key(rel: str) -> str:
    return rel.casefold()


def safe_rel_names(rels: list[str]) -> list[str]:
    """Safe '/'-separated names for ``rels`` (same order), distinct also on case-insensitive,
    normalising file systems; a clash gets ``~2``, ``~3`` ... before the extension."""
    taken: set[str] = set()
    folders: set[str] = set()
    out = []
    for rel in rels:
        parts = [safe_component(p) for p in rel.split("/")]
        cand = "/".join(parts)
        n = 1
        while _key(cand) in taken or _key(cand) in folders or any(
                _key("/".join(parts[:i])) in taken for i in range(1, len(parts))):
            n += 1
            stem, dot, ext = parts[-1].rpartition(".")
            last = f"{stem}~{n}.{ext}" if dot and stem else f"{parts[-1]}~{n}"
            cand = "/".join(parts[:-1] + [last])
        taken.add(_key(cand))
        segs = cand.split("/")
        folders.update(_key("/".join(segs[:i])) for i in range(1, len(segs)))
        out.append(cand)
    return out
