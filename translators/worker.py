"""The sandboxed child: ``labedge _translate-worker --request FILE`` (hidden subcommand).

It limits its own address space first (POSIX), then chooses a translator, translates and
writes the RDE outputs into the request's staging directory. It always tries to leave a
``labedge/translation_report.json`` behind; the parent treats a missing report as a crash.

Exit codes: 0 translated (maybe with warnings), 3 clean failure (report written),
4 out of memory (report written), 2 bad request.
"""
from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path
from typing import Any, Sequence

EXIT_OK, EXIT_BAD_REQUEST, EXIT_FAILED, EXIT_NO_MEMORY = 0, 2, 3, 4


def limit_memory(memory_mb: int) -> None:
    """Cap this process's address space (POSIX). Windows uses a Job object set by the parent."""
    if memory_mb <= 0 or sys.platform == "win32":
        return
    import resource

    limit = int(memory_mb) * 1024 * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no multi-GB core files from a crashing parser


#: sha256 of the raw files as computed by the package builder (one request per worker process).
_KNOWN_SHA256: dict[str, str] = {}


def die_with_parent(parent_pid: int | None) -> None:
    """Linux: be killed when the agent dies, so a kill -9 of the agent never leaves a translator
    running without its time limit (and writing into a spool that recovery has since cleared).
    Windows gets the same from the Job object's kill-on-close."""
    if not sys.platform.startswith("linux") or not parent_pid:
        return
    import ctypes
    import os
    import signal

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the agent died before prctl took effect
        os._exit(EXIT_FAILED)


def _names(paths: Sequence[Path]) -> str:
    return ", ".join(p.name for p in paths)


def _fail(raw: list[Path], out: Path, *, status: str, error: str, translator: Any = None,
          **extra: Any) -> None:
    from translators.writer import failure_report, write_json

    report = failure_report(raw, status=status, error=error, known_sha256=_KNOWN_SHA256,
                            translator=getattr(translator, "name", None),
                            version=getattr(translator, "version", None), **extra)
    write_json(out / "labedge" / "translation_report.json", report)


def run_request(req: dict[str, Any]) -> int:
    from translators.contract import TranslationResult, TranslatorError
    from translators.registry import UnknownTranslator, load_registry
    from translators.writer import write_json, write_outputs

    raw = [Path(p) for p in req["raw_files"]]
    out = Path(req["out_dir"])
    _KNOWN_SHA256.clear()
    _KNOWN_SHA256.update(req.get("sha256") or {})
    wanted = req.get("translator") or "auto"
    registry = load_registry()
    scores: list[tuple[str, float]] = []
    if wanted == "auto":
        translator, scores = registry.choose(raw)
        if translator is None:
            checked = ", ".join(n for n, _ in scores) or "none installed"
            _fail(raw, out, status="untranslated",
                  error=f"no installed translator recognised {_names(raw)} (checked: {checked}); "
                        "the raw files are kept unchanged",
                  sniff_scores=dict(scores))
            return EXIT_FAILED
    else:
        try:
            translator = registry.get(wanted)
        except UnknownTranslator as exc:
            _fail(raw, out, status="failed", error=str(exc))
            return EXIT_FAILED
    # Tell the parent who is working, so a crash or a hang can still be attributed.
    write_json(out.parent / "chosen.json", {"translator": translator.name, "version": translator.version})
    where = f"{translator.name} {translator.version}"
    from translators import progress

    error = None
    try:
        result, error = progress.translate(translator, raw)
        if not isinstance(result, TranslationResult):
            raise TypeError(f"translate() returned {type(result).__name__}, not TranslationResult")
        vocab = result.vocabulary if result.vocabulary is not None else translator.vocabulary()
    except TranslatorError as exc:
        _fail(raw, out, status="failed", error=f"{where}: {exc}", translator=translator,
              sniff_scores=dict(scores))
        return EXIT_FAILED
    except MemoryError:
        _fail(raw, out, status="failed", translator=translator,
              error=f"{where} needed more memory than the limit of {req.get('memory_mb')} MB "
                    f"while reading {_names(raw)}; raise translate memory_mb if the file is genuinely large")
        return EXIT_NO_MEMORY
    except RecursionError:
        _fail(raw, out, status="failed", translator=translator,
              error=f"{where}: {_names(raw)} is nested too deeply to read")
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - a translator bug: keep the detail, ship the raw files
        _fail(raw, out, status="failed", translator=translator,
              error=f"{where} failed on {_names(raw)}: {type(exc).__name__}: {exc}",
              detail=traceback.format_exc(limit=8))
        return EXIT_FAILED
    report = write_outputs(result, vocab, raw, out, translator=translator.name, version=translator.version,
                           known_sha256=_KNOWN_SHA256, error=error)
    if scores:
        report["sniff_scores"] = dict(scores)
    if req.get("rde_template"):
        from translators.rde_template import TemplateError, write_template

        try:
            report = write_template(out, Path(req["rde_template"]), report)
        except TemplateError as exc:
            report["warnings"] = list(report["warnings"]) + [f"{exc}; the package keeps labedge's vocabulary"]
            report["status"] = "partial"
    if req.get("rde_profile"):
        report = _apply_profile(out, raw, req["rde_profile"], report)
    if scores or req.get("rde_template") or req.get("rde_profile"):
        write_json(out / "labedge" / "translation_report.json", report)
    return EXIT_OK


def _apply_profile(out: Path, raw: list[Path], spec: dict[str, str], report: dict[str, Any]) -> dict[str, Any]:
    """An official template's output profile (translators.profiles); without its files, labedge's vocabulary."""
    from translators.profiles import ProfileError, apply_profile

    try:
        summary = apply_profile(out, spec["name"], Path(spec["templates_dir"]), raw_files=raw)
    except ProfileError as exc:
        report["warnings"] = list(report["warnings"]) + [f"{exc}; the package keeps labedge's vocabulary"]
        report["status"] = "partial"
        return report
    report["rde_template"] = {k: v for k, v in summary.items() if k != "warnings"}
    report["warnings"] = list(report["warnings"]) + summary["warnings"]
    report["files"] = sorted(set(report.get("files", [])) | {"labedge/labedge_metadata.json",
                                                            "labedge/labedge_metadata-def.json"})
    return report


def _preload() -> None:
    """Import the translators now, before there is work, so a translation does not wait for them."""
    try:
        from translators.registry import load_registry
        load_registry()
    except Exception:  # a broken plug-in is reported when a request runs, not here
        pass


def handle(path: str) -> int:
    """Run the request in file ``path``; returns an EXIT_* code."""
    try:
        req = json.loads(Path(path).read_text(encoding="utf-8"))
        req["raw_files"], req["out_dir"]  # noqa: B018 - presence check
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"labedge _translate-worker: bad request file {path}: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    die_with_parent(req.get("parent_pid"))
    limit_memory(int(req.get("memory_mb") or 0))
    try:
        return run_request(req)
    except MemoryError:
        return EXIT_NO_MEMORY


def serve(parent_pid: int | None, max_requests: int) -> int:
    """Warm mode: request paths arrive one per line on stdin; each answer is ``done <code>`` on the
    protocol stream. Translators' own prints go to stderr, never into the protocol."""
    import os

    die_with_parent(parent_pid)
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _preload()
    for served in range(1, max_requests + 1):
        line = sys.stdin.readline()
        if not line.strip():
            return EXIT_OK  # the agent stopped
        code = handle(line.strip())
        protocol.write(f"done {code}\n")
        if code == EXIT_NO_MEMORY:
            return code  # the heap may be in pieces: let a fresh process take the next request
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    if args.request == "-":
        return serve(args.parent_pid, args.max_requests)
    return handle(args.request)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--request", required=True,
                   help="JSON request written by translators.pipeline, or - to read its path from stdin")
    p.add_argument("--parent-pid", type=int, default=None, help="the agent's pid (warm mode)")
    p.add_argument("--max-requests", type=int, default=1, help="warm mode: requests before exiting")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the hidden ``_translate-worker`` subcommand (used only by the agent itself)."""
    p = subparsers.add_parser("_translate-worker",
                              description="internal: run one translation in a sandboxed child")
    _arguments(p)
    p.set_defaults(func=run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labedge _translate-worker")
    _arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
