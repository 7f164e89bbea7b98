"""``labedge translate FILE... --out DIR`` and ``labedge translators``.

``translate`` runs exactly the agent's path (sandboxed worker, the agent's default limits) offline, so a data
architect sees what the agent would ship: each FILE (or each folder, as one measurement)
becomes ``DIR/<name>/`` with raw/ copies and the RDE outputs, and a summary is printed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from agent.config import Config as AGENT_DEFAULTS  # its dataclass defaults are the agent's limits
from translators.generic_text.config import ENV_VAR
from translators.pipeline import translate_into
from translators.registry import load_registry
from translators.writer import safe_name, unique_name


def _measurements(items: list[str]) -> list[tuple[str, list[Path]]]:
    out = []
    used: set[str] = set()  # a/scan.ras and b/scan.ras must not write into one output folder
    for item in items:
        p = Path(item)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file())
            out.append((unique_name(safe_name(p.name), used), files))
        elif p.is_file():
            out.append((unique_name(safe_name(p.name), used), [p]))
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
    return out


def _fmt(v: Any) -> str:
    s = json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v
    return s if len(s) <= 60 else s[:57] + "..."


def _print_report(name: str, rep: dict[str, Any], verbose: bool) -> None:
    counts = rep.get("counts") or {}
    print(f"== {name}: {rep.get('status')} (translator {rep.get('translator')} {rep.get('translator_version') or ''})")
    if rep.get("error"):
        print(f"   error: {rep['error']}")
    if counts:
        print(f"   vendor keys {counts.get('vendor_keys')}, mapped terms {counts.get('mapped_terms')} "
              f"({counts.get('mapped_constant')} constant, {counts.get('variable_rows')} variable rows), "
              f"unmapped vendor keys {counts.get('unmapped_vendor_keys')}")
        if counts.get("vendor_keys_mapped") is not None:
            print(f"   vendor keys read by a term {counts['vendor_keys_mapped']}, "
                  f"values kept verbatim (unparsed) {counts.get('unparsed_values', 0)}")
    if rep.get("encodings"):
        print("   encodings: " + ", ".join(f"{k} {v}" for k, v in rep["encodings"].items()))
    if rep.get("rde_template"):
        t = rep["rde_template"]
        print(f"   RDE template {t.get('profile') or t.get('source')}: {t['written']} values written in its vocabulary "
              "(meta/metadata.json); labedge's own terms below are in labedge/labedge_metadata.json")
    shown = rep.get("mapped") or []
    if not verbose:
        shown = [m for m in shown if m["where"] in ("constant", "variable[0]")]
    for m in shown:
        unit = f" {m['unit']}" if m.get("unit") else ""
        print(f"   {m['where']:<12} {m['key']:<28} = {_fmt(m['value'])}{unit}   <- {m.get('originalName')}")
    for w in rep.get("warnings") or []:
        print(f"   warning: {w}")
    for f in rep.get("files") or []:
        print(f"   wrote {f}")


def _template_choice(args: argparse.Namespace) -> tuple[Path | None, tuple[str, Path] | None]:
    """``--rde-template``: a profile name (translators.profiles) or a metadata-def.json path."""
    from translators.profiles import names

    if not args.rde_template:
        return None, None
    if args.rde_template in names():
        root = args.rde_templates or os.environ.get("LABEDGE_RDE_TEMPLATES")
        if not root or not Path(root).is_dir():
            raise NotADirectoryError(f"--rde-template {args.rde_template} needs --rde-templates DIR (or "
                                     "LABEDGE_RDE_TEMPLATES), the folder holding the official NIMS template repositories")
        return None, (args.rde_template, Path(root).resolve())
    return Path(args.rde_template).resolve(), None


def run_translate(args: argparse.Namespace) -> int:
    if args.mapping:
        os.environ[ENV_VAR] = os.pathsep.join([*args.mapping, os.environ.get(ENV_VAR, "")]).strip(os.pathsep)
    try:
        work = _measurements(args.files)
    except FileNotFoundError as exc:
        print(f"labedge translate: {exc}", file=sys.stderr)
        return 2
    out_root = Path(args.out)
    failures = 0
    results = []
    try:
        template_path, profile = _template_choice(args)
    except NotADirectoryError as exc:
        print(f"labedge translate: {exc}", file=sys.stderr)
        return 2
    for name, files in work:
        target = out_root / name
        data = target / "data"
        raw_dir = data / "raw"
        raw_dir.mkdir(parents=True, exist_ok=True)
        copies = []
        for f in files:
            dst = raw_dir / f.name
            shutil.copy2(f, dst)
            copies.append(dst)
        outcome = translate_into(copies, data, translator=args.translator, timeout_s=args.timeout,
                                 memory_mb=args.memory_mb,
                                 rde_template=template_path, rde_profile=profile)
        failures += not outcome.ok
        results.append({"name": name, "data_dir": str(data), **outcome.report})
        if not args.json:
            _print_report(name, outcome.report, args.verbose)
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
    return 1 if failures else 0


def run_list(args: argparse.Namespace) -> int:
    reg = load_registry()
    from translators.profiles import suggest

    rows = [{**e.as_dict(), "rde_templates": suggest(e.as_dict()["name"])} for e in reg.entries]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for r in rows:
            state = "ok" if r["loaded"] else "FAILED"
            print(f"{r['name']:<16} {r['version'] or '-':<8} {state:<6} {r['distribution'] or '-':<12} "
                  f"{r['description'] if r['loaded'] else r['error']}"
                  + (f"  [rde_template: {', '.join(r['rde_templates'])}]" if r["rde_templates"] else ""))
    return 0 if all(r["loaded"] for r in rows) else 1


def add_parser(subparsers: Any) -> None:
    """Register ``translate`` and ``translators`` on the labedge CLI."""
    p = subparsers.add_parser("translate", help="run the translators offline on files and show what was mapped",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", metavar="FILE", help="instrument file, or folder = one measurement")
    p.add_argument("--out", required=True, help="output folder (one sub-folder per measurement)")
    p.add_argument("--translator", default="auto", help="translator name (default: auto-detect)")
    p.add_argument("--mapping", action="append", default=[],
                   help="extra generic-text mapping file or folder (TOML/JSON); repeatable")
    # the agent's own defaults (agent.config.Config), so an offline run meets exactly the agent's limits
    p.add_argument("--timeout", type=float, default=AGENT_DEFAULTS.translate_timeout_seconds,
                   help=f"seconds per measurement (default {AGENT_DEFAULTS.translate_timeout_seconds:g}, "
                        "as the agent's translate_timeout_seconds)")
    p.add_argument("--memory-mb", type=int, default=AGENT_DEFAULTS.translate_memory_mb,
                   help=f"memory limit of the translator in MB (default {AGENT_DEFAULTS.translate_memory_mb}, "
                        "as the agent's translate_memory_mb)")
    p.add_argument("--json", action="store_true", help="print the translation reports as JSON")
    p.add_argument("--rde-template", metavar="NAME|METADATA_DEF",
                   help="write metadata in an official RDE template's vocabulary: a profile from "
                        "`labedge translators` (with --rde-templates) or a metadata-def.json")
    p.add_argument("--rde-templates", metavar="DIR",
                   help="folder holding the official NIMS template repositories (default: $LABEDGE_RDE_TEMPLATES)")
    p.add_argument("-v", "--verbose", action="store_true", help="show mapped terms of every scan")
    p.set_defaults(func=run_translate)
    q = subparsers.add_parser("translators", help="list installed translators with version and load errors")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=run_list)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labedge")
    add_parser(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
