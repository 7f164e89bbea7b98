"""The seam the package builder calls: translate raw copies into the RDE layout.

The chosen translator runs in a sandboxed child (``translators.sandbox``) that writes into a
private staging directory; only a finished translation is moved into ``data_dir``. A crash,
a hang, a memory blow-up or a clean translator error all end the same way: no partial
outputs, and ``labedge/translation_report.json`` saying what happened. The raw files are
never touched, so the package still ships.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from translators import sandbox
from translators.writer import failure_report, write_json

REPORT_REL = Path("labedge") / "translation_report.json"


@dataclass
class TranslationOutcome:
    ok: bool
    translator: str | None = None
    translator_version: str | None = None
    error: str | None = None
    files_written: list[Path] = field(default_factory=list)
    status: str = "failed"  # ok | partial | failed | untranslated
    warnings: list[str] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        return obj if isinstance(obj, dict) else None
    except (OSError, ValueError):
        return None


def _describe(run: sandbox.SandboxRun, who: str, timeout_s: float, memory_mb: int) -> str:
    if run.timed_out:
        return f"{who} did not finish within {timeout_s:g} s and was stopped"
    sig = run.signal_name()
    if sig:
        hint = " (possibly the memory limit of %d MB)" % memory_mb if sig in ("SIGKILL", "SIGSEGV") else ""
        return f"{who} crashed with {sig}{hint}"
    last = [ln for ln in run.stderr_tail.strip().splitlines() if ln.strip()]
    detail = f": {last[-1][:300]}" if last else ""
    if any("MemoryError" in ln for ln in last):
        return f"{who} ran out of memory (limit {memory_mb} MB)"
    return f"{who} exited with code {run.returncode} without a report{detail}"


def _move_tree(src: Path, dst: Path) -> list[Path]:
    """Move every file under ``src`` to the same relative place under ``dst`` (same filesystem)."""
    moved = []
    for path in sorted(src.rglob("*")):
        if path.is_file():
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            moved.append(target)
    return moved


def translate_into(raw_files: list[Path], data_dir: Path, *, translator: str = "auto",
                   timeout_s: float = 120.0, memory_mb: int = 2048,
                   source_sha256: dict[Path, str] | None = None,
                   rde_template: Path | None = None,
                   rde_profile: tuple[str, Path] | None = None) -> TranslationOutcome:
    """Translate ``raw_files`` (copies already in the spool) into ``data_dir``.

    ``source_sha256`` gives hashes already computed while copying, so provenance does not read
    the files again. ``rde_template``: an official RDE template's metadata-def.json; the package's
    metadata is written in its vocabulary (``translators.rde_template``).

    Never raises for a bad instrument file: the error goes into the outcome and the
    translation report. Raises OSError only for the agent's own disk problems (ENOSPC).
    """
    raw = [Path(p).resolve() for p in raw_files]
    known = {str(Path(p).resolve()): h for p, h in (source_sha256 or {}).items()}
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    # Staging beside data/ (same filesystem: os.replace is atomic), never inside it.
    staging = Path(tempfile.mkdtemp(prefix=".labedge-translate-", dir=data_dir.parent))
    try:
        out = staging / "out"
        out.mkdir()
        request = staging / "request.json"
        write_json(request, {"raw_files": [str(p) for p in raw], "out_dir": str(out),
                             "translator": translator, "memory_mb": int(memory_mb), "sha256": known,
                             "parent_pid": os.getpid(),
                             "rde_template": str(rde_template) if rde_template else None,
                             # an output profile (translators.profiles): name and the site's official templates
                             "rde_profile": {"name": rde_profile[0], "templates_dir": str(rde_profile[1])}
                             if rde_profile else None})
        if not raw:
            report = failure_report(raw, status="untranslated", error="no raw files were given",
                                    known_sha256=known)
            run = None
        else:
            run = sandbox.run_request(request, timeout_s=timeout_s, memory_mb=memory_mb)
            report = _read_json(out / REPORT_REL) if not run.timed_out else None
        files: list[Path] = []
        if report is not None and run is not None and report.get("status") in ("ok", "partial"):
            files = _move_tree(out, data_dir)
        elif run is not None and report is None:
            chosen = _read_json(staging / "chosen.json") or {}
            name, version = chosen.get("translator"), chosen.get("version")
            who = f"translator {name} {version}" if name else "the translator worker"
            report = failure_report(raw, status="failed", translator=name, version=version, known_sha256=known,
                                    error=_describe(run, who, timeout_s, memory_mb) + f" while reading "
                                    + ", ".join(p.name for p in raw) + "; the raw files are kept unchanged")
        assert report is not None
        if run is not None:
            report["sandbox"] = {"elapsed_s": round(run.elapsed_s, 3), "returncode": run.returncode,
                                 "timed_out": run.timed_out, "timeout_s": timeout_s, "memory_mb": memory_mb}
            if report.get("status") not in ("ok", "partial") and run.stderr_tail.strip():
                report["sandbox"]["stderr_tail"] = run.stderr_tail[-2000:]
        report_path = write_json(data_dir / REPORT_REL, report)
        if report_path not in files:
            files.append(report_path)
        status = report.get("status", "failed")
        return TranslationOutcome(ok=status in ("ok", "partial"), translator=report.get("translator"),
                                  translator_version=report.get("translator_version"),
                                  error=report.get("error"), files_written=files, status=status,
                                  warnings=list(report.get("warnings") or []), report=report)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def prewarm(memory_mb: int = 2048) -> None:
    """Start a translator worker ahead of the first measurement (call from the pipeline thread)."""
    sandbox.prewarm(memory_mb)
