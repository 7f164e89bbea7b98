"""Build one package: a BagIt bag whose data/ follows RDE's layout, made atomically in the spool.

The bag is assembled in ``spool/tmp/<id>`` and renamed to ``spool/packages/<id>`` only when
complete and fsynced, so a crash never leaves half a package that looks whole.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import re
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from agent import __version__
from agent.measurement import Measurement
from agent.package.bag import write_bag_tags
from agent.package.copying import CopiedFile, copy_and_hash, hash_file
from wire.durable import fsync_dir
from agent.package.ids import new_package_id
from agent.package.safe_names import path_text, safe_rel_names
from agent.pairing import Pairing
from agent.state.store import FileRecord
from translators.pipeline import TranslationOutcome, translate_into

log = logging.getLogger(__name__)


@dataclass
class BuiltPackage:
    id: str
    path: Path
    nbytes: int
    files: list[FileRecord]
    translation: dict[str, Any] = field(default_factory=dict)
    pairing: dict[str, Any] = field(default_factory=dict)


@dataclass
class Spool:
    root: Path

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def packages(self) -> Path:
        return self.root / "packages"

    def ensure(self) -> None:
        for d in (self.tmp, self.packages):
            d.mkdir(parents=True, exist_ok=True)

    def clear_tmp(self) -> int:
        """Remove half-built packages left by a crash; their sources were never recorded as taken."""
        n = 0
        if self.tmp.exists():
            for child in self.tmp.iterdir():
                shutil.rmtree(child, ignore_errors=True)
                n += 1
        return n

    def release(self, package_id: str) -> None:
        """Free the space of a delivered package (the state row stays)."""
        shutil.rmtree(self.packages / package_id, ignore_errors=True)


@dataclass
class BuildContext:
    device_id: str
    translate_timeout_s: float = 300.0
    translate_memory_mb: int = 4096
    rde_profile: tuple[str, Path] | None = None  # (official template profile, the site's template folder)
    progress: Callable[[str, int, int], None] | None = None  # (phase, done_bytes, total_bytes)


def build_package(spool: Spool, measurement: Measurement, pairing: Pairing, ctx: BuildContext, *,
                  translator: str | None = "auto", template: str | None = None,
                  kind: str = "measurement", parent_id: str | None = None,
                  supersedes: list[str] | None = None) -> BuiltPackage:
    """Copy, hash, translate and bag ``measurement``; raises SourceChanged / OSError without leaving a trace."""
    pkg_id = new_package_id()
    work = spool.tmp / pkg_id
    data = work / "data"
    raw_dir = data / "raw"
    started = time.time()
    try:
        raw_dir.mkdir(parents=True)
        copied = _copy_sources(measurement, raw_dir, ctx)
        payload: dict[str, tuple[str, int]] = {f"data/raw/{c.dest.relative_to(raw_dir).as_posix()}": (c.sha256, c.size)
                                               for c in copied}
        if translator is None:  # supplementary files (agent.sheets.attachments) are not translated
            outcome = TranslationOutcome(ok=False, status="untranslated", error=f"{kind}: not translated")
        else:
            outcome = translate_into([c.dest for c in copied], data, translator=translator,
                                     timeout_s=ctx.translate_timeout_s, memory_mb=ctx.translate_memory_mb,
                                     source_sha256={c.dest: c.sha256 for c in copied}, rde_profile=ctx.rde_profile)
        _write_json(data / "invoice" / "invoice.json", pairing.invoice)
        _write_json(data / "tasksupport" / "invoice.schema.json", pairing.schema)
        _write_json(data / "labedge" / "provenance.json",
                    _provenance(pkg_id, measurement, copied, pairing, outcome, ctx, template, started, raw_dir)
                    | {"kind": kind, **({"parent_id": parent_id} if parent_id else {}),
                       **({"supersedes": list(supersedes)} if supersedes else {}),
                       **({"empty": True} if measurement.files and not any(f.size for f in measurement.files)
                          else {})})
        for path in sorted(data.rglob("*")):
            rel = path.relative_to(work).as_posix()
            if path.is_file() and rel not in payload:
                payload[rel] = (hash_file(path), path.stat().st_size)
        write_bag_tags(work, [(rel, digest, size) for rel, (digest, size) in payload.items()], {
            "External-Identifier": pkg_id,
            "Source-Organization": ctx.device_id,
            "Internal-Sender-Identifier": f"{measurement.instrument_id}:{path_text(measurement.key)}",
            "Internal-Sender-Description": "labedge measurement package (RDE layout in data/)",
        })
        _fsync_tree(work)
        final = spool.packages / pkg_id
        os.rename(work, final)
        fsync_dir(spool.packages)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    records = [FileRecord(str(s.path), c.size, c.mtime_ns, c.sha256) for s, c in zip(measurement.files, copied)]
    nbytes = sum(size for _, size in payload.values())
    return BuiltPackage(pkg_id, final, nbytes, records,
                        translation={"ok": outcome.ok, "translator": outcome.translator, "error": outcome.error,
                                     "looks_truncated": looks_truncated(outcome)},
                        pairing={"status": pairing.status, "sheet_id": pairing.sheet_id, "source": pairing.source})


_TRUNCATED = re.compile(r"truncat", re.IGNORECASE)


def looks_truncated(outcome: TranslationOutcome) -> bool:
    """The translator said the file looks cut short (its writer may not be done with it)."""
    return any(_TRUNCATED.search(t or "") for t in [outcome.error, *outcome.warnings])


def _copy_sources(measurement: Measurement, raw_dir: Path, ctx: BuildContext) -> list[CopiedFile]:
    total = sum(f.size for f in measurement.files)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if ctx.progress is not None:
            ctx.progress(f"copying {measurement.key}", done, total)

    out = []
    # every raw file under a name any file system, bagit and the receiver take (security 10)
    for src, name in zip(measurement.files, safe_rel_names([f.rel for f in measurement.files])):
        if name != src.rel:
            log.info("%s is stored as raw/%s (its original name is kept in provenance.json)", path_text(src.path), name)
        dest = raw_dir / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        # fsync=False: _fsync_tree syncs the whole bag before the rename, so the raw copies are
        # written back while the translator runs instead of stalling the copy.
        out.append(copy_and_hash(src.path, dest, progress=tick if total > 64 * 1024 * 1024 else None,
                                 expect=(src.size, src.mtime_ns), fsync=False, root=measurement.watch_root))
    return out


def _provenance(pkg_id: str, m: Measurement, copied: list[CopiedFile], pairing: Pairing,
                outcome: TranslationOutcome, ctx: BuildContext, template: str | None, started: float, raw_dir: Path) -> dict:
    def iso(t: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"

    return {
        "package_id": pkg_id,
        "agent": {"name": "labedge", "version": __version__, "python": platform.python_version(),
                  "platform": platform.platform()},
        "device_id": ctx.device_id,
        "host": socket.gethostname(),
        "instrument_id": m.instrument_id,
        "template": template,
        "measurement": {"key": path_text(m.key), "watch_root": path_text(m.watch_root),
                        "settled_at": iso(m.settled_at)},
        # original_name: the name on the PC (bytes that are not UTF-8 as \xNN), raw: the stored one
        "sources": [{"path": path_text(s.path), "raw": f"raw/{c.dest.relative_to(raw_dir).as_posix()}",
                     "original_name": path_text(s.rel), "size": c.size, "sha256": c.sha256,
                     "mtime": iso(c.mtime_ns / 1e9), "mtime_ns": c.mtime_ns} for s, c in zip(m.files, copied)],
        "pairing": {"status": pairing.status, "sheet_id": pairing.sheet_id, "source": pairing.source,
                    **({"details": pairing.details} if pairing.details else {})},
        "translation": {"ok": outcome.ok, "translator": outcome.translator,
                        "translator_version": outcome.translator_version, "error": outcome.error},
        "times": {"build_started": iso(started), "packaged": iso(time.time())},
    }


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _fsync_tree(root: Path) -> None:
    # Every file of the bag, raw copies included (copied without fsync), before the rename.
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))
