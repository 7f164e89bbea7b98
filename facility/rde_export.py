"""``labedge rde-export PACKAGE... --template NAME --out DIR``: the RDEFormat zip of stored packages.

RDE's RDEFormat mode (``extended_mode: rdeformat``, docs/rde.md) takes one zip and copies it by
folder name: ``raw/``, ``nonshared_raw/``, ``main_image/``, ``other_image/``, ``meta/``,
``structured/``, ``logs/``. Everything else (``invoice/``, ``tasksupport/``, our ``labedge/``) is
dropped, so labedge's provenance, translation report and original metadata go under
``structured/labedge/``. The sample sheet reaches RDE only through the registration invoice: it is
checked against the official ``invoice.schema.json`` and written beside the zip.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import jsonschema

from translators import profiles

#: folders RDE keeps, copied as they are (the vendor file goes to the template's raw folder)
KEPT = ("main_image", "other_image", "meta", "structured", "logs")
#: labedge's own files that must survive RDE: kept under structured/labedge/
LABEDGE_KEPT = ("provenance.json", "translation_report.json", "original_metadata.json",
                "labedge_metadata.json", "labedge_metadata-def.json")


class ExportError(Exception):
    """A package or the template cannot be exported; the message names the package and the cause."""


def _data_dir(package: Path) -> Path:
    d = package / "data" if (package / "data").is_dir() else package
    if not (d / "labedge" / "original_metadata.json").is_file():
        raise ExportError(f"{package}: not a labedge package (no data/labedge/original_metadata.json)")
    return d


def check_invoice(invoice: dict[str, Any], schema_path: Path) -> list[str]:
    """Every way the invoice misses the official schema, each naming its field."""
    try:
        schema = json.loads(schema_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"official invoice schema {schema_path}: cannot be read ({exc})") from None
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for err in sorted(validator.iter_errors(invoice), key=lambda e: list(e.path)):
        where = "/".join(map(str, err.path)) or "(top level)"
        problems.append(f"{where}: {err.message}")
    return problems


def export_one(package: Path, template: str, templates_root: Path, out: Path) -> tuple[Path, list[str]]:
    """Write ``<package-id>.zip`` (and ``<package-id>.invoice.json`` when valid) into ``out``."""
    profile = profiles.get(template)
    src = _data_dir(Path(package))
    name = (src.parent if src.name == "data" else src).name
    with tempfile.TemporaryDirectory(prefix="rde-export-") as tmp:
        work = Path(tmp) / "data"
        shutil.copytree(src, work, symlinks=False)
        summary = profiles.apply_profile(work, template, templates_root)
        zpath = out / f"{name}.zip"
        part = zpath.with_suffix(".zip.part")
        with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for folder in ("raw", *KEPT):
                base = work / folder
                if not base.is_dir():
                    continue
                target = profile.raw_folder if folder == "raw" else folder
                for f in sorted(p for p in base.rglob("*") if p.is_file()):
                    z.write(f, f"{target}/{f.relative_to(base).as_posix()}")  # zipfile flags UTF-8 names
            for fname in LABEDGE_KEPT:
                f = work / "labedge" / fname
                if f.is_file():
                    z.write(f, f"structured/labedge/{fname}")
        os.replace(part, zpath)
    invoice_path = src / "invoice" / "invoice.json"
    try:
        invoice = json.loads(invoice_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return zpath, [f"{invoice_path}: cannot be read ({exc})"]
    problems = check_invoice(invoice, profile.invoice_schema_path(templates_root))
    if not problems:
        (out / f"{name}.invoice.json").write_text(json.dumps(invoice, ensure_ascii=False, indent=2) + "\n",
                                                  encoding="utf-8")
    return zpath, problems + [f"metadata: {w}" for w in summary["warnings"]]


def run(args: argparse.Namespace) -> int:
    root = Path(args.templates or os.environ.get("LABEDGE_RDE_TEMPLATES", ""))
    if not str(root) or not root.is_dir():
        print("rde-export: --templates DIR (or LABEDGE_RDE_TEMPLATES) must name the folder holding the official "
              "template repositories (RDE_XRD, RDE_XPS, ...)", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for package in args.packages:
        try:
            zpath, problems = export_one(Path(package), args.template, root, out)
        except (ExportError, profiles.ProfileError, OSError) as exc:
            print(f"{package}: {exc}", file=sys.stderr)
            failed += 1
            continue
        invoice_bad = [p for p in problems if not p.startswith("metadata: ")]
        print(f"{package}: wrote {zpath}" + ("" if invoice_bad else f" and {zpath.with_suffix('').name}.invoice.json"))
        for p in problems:
            print(f"  {'invoice' if p in invoice_bad else 'warning'}: {p}", file=sys.stderr)
        failed += bool(invoice_bad)
    return 1 if failed else 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("rde-export", help="write the RDEFormat zip of stored packages for an official NIMS template")
    p.add_argument("packages", nargs="+", metavar="PACKAGE", help="stored package folder(s); several = a dataset")
    p.add_argument("--template", required=True, choices=profiles.names(), help="official template profile")
    p.add_argument("--templates", metavar="DIR", help="folder holding the official template repositories "
                   "(default: $LABEDGE_RDE_TEMPLATES)")
    p.add_argument("--out", required=True, help="output folder (one .zip and .invoice.json per package)")
    p.set_defaults(func=run)
