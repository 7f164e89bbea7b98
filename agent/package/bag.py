"""Write and check BagIt (RFC 8493) tag files. The ``bagit`` library is the reference validator."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Iterable

from agent import __version__

BAGIT_TXT = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"


def encode_manifest_path(rel: str) -> str:
    # RFC 8493 §2.1.3: CR, LF and % in file names are percent-encoded in manifests.
    return rel.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def write_bag_tags(bag_dir: Path, payload: Iterable[tuple[str, str, int]], info: dict[str, str]) -> None:
    """Write the tag files for ``bag_dir`` whose payload is (``data/...`` path, sha256, size) rows."""
    rows = sorted(payload)
    total = sum(size for _, _, size in rows)
    manifest = "".join(f"{digest}  {encode_manifest_path(rel)}\n" for rel, digest, _ in rows)
    bag_info = {
        "Bagging-Date": time.strftime("%Y-%m-%d"),
        "Bag-Software-Agent": f"labedge {__version__}",
        "Payload-Oxum": f"{total}.{len(rows)}",
        **info,
    }
    tags = {
        "bagit.txt": BAGIT_TXT,
        "bag-info.txt": "".join(f"{k}: {_one_line(v)}\n" for k, v in bag_info.items()),
        "manifest-sha256.txt": manifest,
    }
    tagmanifest = []
    for name, text in tags.items():
        data = text.encode("utf-8")
        (bag_dir / name).write_bytes(data)
        tagmanifest.append(f"{hashlib.sha256(data).hexdigest()}  {name}\n")
    (bag_dir / "tagmanifest-sha256.txt").write_text("".join(tagmanifest), encoding="utf-8")


def _one_line(value: str) -> str:
    return " ".join(str(value).split())


def read_manifest(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, _, rel = line.partition("  ")
            out[rel] = digest.strip().lower()
    return out
