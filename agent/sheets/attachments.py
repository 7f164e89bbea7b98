"""Supplementary files (analysis results, photos, notes) attached to an earlier package.

Only txt, csv, markdown, png and jpeg are allowed, checked by name AND by content: an .exe
renamed .png is refused because it does not start with the PNG signature. Names are reduced to
a safe base name (never a path); the files travel as a small package of kind "attachment" whose
``parent_id`` is the earlier package, built atomically by the same builder as measurements.
"""
from __future__ import annotations

import re
import secrets
import shutil
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from agent.config import Config
from agent.measurement import Measurement, SourceFile
from agent.package.builder import BuildContext, BuiltPackage, Spool, build_package
from agent.pairing import MINIMAL_SCHEMA, Pairing, minimal_invoice
from agent.state.store import StateStore

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_TOTAL_BYTES = 40 * 1024 * 1024
MAX_FILES = 20
KINDS = {".txt": "text", ".csv": "text", ".md": "text", ".markdown": "text",
         ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg"}
ALLOWED_TEXT = "txt, csv, md (markdown), png, jpg/jpeg"
_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"
_SAFE_NAME = re.compile(r"[^\w.\- ()]+", re.UNICODE)


class AttachmentRefused(Exception):
    """A supplementary file is not allowed; the message names the file and what is allowed (``ja``: the
    same in Japanese, for the local page)."""

    def __init__(self, message: str, ja: str | None = None) -> None:
        super().__init__(message)
        self.ja = ja or message


@dataclass
class Upload:
    name: str
    data: bytes


def safe_name(name: str) -> str:
    """A plain base name: no folders, no leading dots, only word characters and . - ( ) space."""
    base = re.split(r"[\\/]", str(name))[-1]
    base = unicodedata.normalize("NFC", base).strip()
    base = _SAFE_NAME.sub("_", base).lstrip(". ")[:120]
    return base


def check_upload(up: Upload) -> str:
    """The safe name of an allowed file, or AttachmentRefused saying why not."""
    shown = repr(str(up.name)[:120])
    name = safe_name(up.name)
    ext = Path(name).suffix.lower()
    if not name or ext not in KINDS:
        raise AttachmentRefused(f"{shown}: this file type is not allowed; allowed: {ALLOWED_TEXT}",
                                f"{shown}: この種類のファイルは添付できません（可: {ALLOWED_TEXT}）")
    if not up.data:
        raise AttachmentRefused(f"{shown}: the file is empty", f"{shown}: ファイルが空です")
    if len(up.data) > MAX_FILE_BYTES:
        raise AttachmentRefused(f"{shown}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB",
                                f"{shown}: {MAX_FILE_BYTES // (1024 * 1024)} MiB を超えています")
    kind = KINDS[ext]
    if kind == "png" and not up.data.startswith(_PNG):
        raise AttachmentRefused(f"{shown}: named .png but its content is not a PNG image; refused",
                                f"{shown}: 名前は .png ですが中身が PNG 画像ではありません")
    if kind == "jpeg" and not up.data.startswith(_JPEG):
        raise AttachmentRefused(f"{shown}: named {ext} but its content is not a JPEG image; refused",
                                f"{shown}: 名前は {ext} ですが中身が JPEG 画像ではありません")
    if kind == "text" and not _is_text(up.data):
        raise AttachmentRefused(f"{shown}: named {ext} but its content is not text (binary data); refused",
                                f"{shown}: 名前は {ext} ですが中身がテキストではありません")
    return name


def _is_text(data: bytes) -> bool:
    if b"\x00" in data[:65536] or data.startswith(b"MZ") or data.startswith(b"\x7fELF"):
        return False
    for enc in ("utf-8-sig", "cp932"):  # Japanese lab PCs still write Shift_JIS text
        try:
            data.decode(enc)
            return True
        except UnicodeDecodeError:
            continue
    return False


def attach(cfg: Config, store: StateStore, spool: Spool, parent_id: str, uploads: list[Upload]) -> BuiltPackage:
    """Check every file, then build and queue one attachment package; raises AttachmentRefused."""
    parent = store.package(parent_id) if isinstance(parent_id, str) else None
    if parent is None:
        raise AttachmentRefused(f"package {str(parent_id)[:80]!r} is not known here; attach to a package "
                                "listed on the queue page")
    if parent.kind != "measurement":
        raise AttachmentRefused(f"package {parent_id} is itself an attachment; attach to its measurement")
    if not uploads:
        raise AttachmentRefused("no files were given", "ファイルが選ばれていません")
    if len(uploads) > MAX_FILES:
        raise AttachmentRefused(f"{len(uploads)} files at once; at most {MAX_FILES}",
                                f"一度に {len(uploads)} 個は多すぎます（最大 {MAX_FILES} 個）")
    if sum(len(u.data) for u in uploads) > MAX_TOTAL_BYTES:
        raise AttachmentRefused(f"the files add up to more than {MAX_TOTAL_BYTES // (1024 * 1024)} MiB",
                                f"合計が {MAX_TOTAL_BYTES // (1024 * 1024)} MiB を超えています")
    names: list[str] = []
    for up in uploads:
        n = check_upload(up)
        stem, ext, i = Path(n).stem, Path(n).suffix, 1
        while n.lower() in (x.lower() for x in names):
            i += 1
            n = f"{stem}-{i}{ext}"
        names.append(n)
    spool.ensure()
    staging = spool.tmp / f"attach-{secrets.token_hex(8)}"  # cleared at start-up if we crash mid-way
    staging.mkdir(parents=True)
    try:
        files = []
        for n, up in zip(names, uploads):
            p = staging / n
            with open(p, "xb") as fh:
                fh.write(up.data)
            st = p.stat()
            files.append(SourceFile(p, f"attachments/{n}", st.st_size, st.st_mtime_ns))
        m = Measurement(instrument_id=parent.instrument_id, key=f"attachment-to-{parent_id}", files=files,
                        settled_at=time.time(), watch_root=staging)
        inv = minimal_invoice(m, cfg.default_owner_id)
        inv["basic"]["dataName"] = f"attachment to {parent_id}"
        inv["basic"]["description"] = f"labedge: supplementary files for package {parent_id}"
        pairing = Pairing("attachment", inv, MINIMAL_SCHEMA, source="attachment", details={"parent_id": parent_id})
        built = build_package(spool, m, pairing, BuildContext(cfg.device_id), translator=None,
                              kind="attachment", parent_id=parent_id)
        store.add_package(package_id=built.id, instrument_id=parent.instrument_id, path=str(built.path),
                          nbytes=built.nbytes, files=built.files, kind="attachment", parent_id=parent_id,
                          translation=built.translation, pairing=built.pairing)
        return built
    finally:
        shutil.rmtree(staging, ignore_errors=True)
