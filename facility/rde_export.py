"""``labedge rde-export PACKAGE... --template NAME --out DIR``: the RDEFormat zip of stored packages.

RDE's RDEFormat mode (``extended_mode: rdeformat``, docs/rde.md) takes one zip and copies it by
folder name: ``raw/``, ``nonshared_raw/``, ``main_image/``, ``other_image/``, ``meta/``,
``structured/``, ``logs/``. Everything else (``invoice/``, ``tasksupport/``, our ``labedge/``) is
dropped, so labedge's provenance, translation report and original metadata go under
``structured/labedge/``. The sample sheet reaches RDE only through the registration invoice: it is
written beside the zip, and checked against the official ``invoice.schema.json``
(``<package>.export.json`` lists what is missing).

``--template`` is a profile name (``translators.profiles``; the official files are found under
``--templates DIR``) or the path of an official ``metadata-def*.json`` whose terms are one vendor
key each (Rigaku, VAMAS), with its ``invoice.schema.json`` beside it.
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
    # the receiver writes every file itself; a link in the store was planted, and following it
    # would put a file from elsewhere on this machine into a zip bound for RDE
    links = [p for p in d.rglob("*") if p.is_symlink()]
    if links or d.is_symlink():
        raise ExportError(f"{package}: refused, it holds a symbolic link ({(links or [d])[0]})")
    return d


def _tuple_items(node: Any) -> Any:
    """The official schemas declare draft 2020-12 but write the older tuple form ``"items": [...]``
    (``sample.generalAttributes``); 2020-12 spells that ``prefixItems``, and the validator crashes on
    the list (AttributeError) as soon as an invoice carries the array. Read it as its authors meant."""
    if isinstance(node, dict):
        out = {k: _tuple_items(v) for k, v in node.items()}
        if isinstance(out.get("items"), list) and "prefixItems" not in out:
            out["prefixItems"] = out.pop("items")
        return out
    if isinstance(node, list):
        return [_tuple_items(v) for v in node]
    return node


def check_invoice(invoice: Any, schema_path: Path) -> list[str]:
    """Every way the invoice misses the official schema, each naming its field."""
    try:
        schema = _tuple_items(json.loads(schema_path.read_text(encoding="utf-8")))
        validator = jsonschema.Draft202012Validator(schema)
    except (OSError, ValueError) as exc:
        raise ExportError(f"official invoice schema {schema_path}: cannot be read ({exc})") from None
    except jsonschema.SchemaError as exc:
        raise ExportError(f"official invoice schema {schema_path}: not a JSON schema ({exc.message})") from None
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}"
            for e in sorted(validator.iter_errors(invoice), key=lambda e: list(map(str, e.absolute_path)))]


def _rewrite(work: Path, template: str, templates_root: Path | None) -> tuple[dict[str, Any], str, Path]:
    """Apply the template to the working copy: (summary, raw folder, invoice schema)."""
    if template in profiles.names():
        if templates_root is None:
            raise ExportError(f"--template {template} needs --templates DIR (or LABEDGE_RDE_TEMPLATES): the folder "
                              "holding the official template repositories (RDE_XRD, RDE_XPS, ...)")
        profile = profiles.get(template)
        return (profiles.apply_profile(work, template, templates_root), profile.raw_folder,
                profile.invoice_schema_path(templates_root))
    path = Path(template)
    if not path.is_file():
        raise ExportError(f"--template {template}: neither a profile ({', '.join(profiles.names())}) "
                          "nor an official metadata-def.json file")
    return profiles.apply_def(work, path), "nonshared_raw", path.with_name("invoice.schema.json")


def export_one(package: Path, template: str, templates_root: Path | None, out: Path) -> dict[str, Any]:
    """Write ``<package>.zip``, ``<package>.invoice.json`` and ``<package>.export.json`` into ``out``."""
    src = _data_dir(Path(package))
    name = (src.parent if src.name == "data" else src).name
    out.mkdir(parents=True, exist_ok=True)
    zpath = out / f"{name}.zip"
    with tempfile.TemporaryDirectory(prefix="rde-export-") as tmp:
        work = Path(tmp) / "data"
        shutil.copytree(src, work, symlinks=False)
        summary, raw_folder, schema_path = _rewrite(work, template, templates_root)
        part = zpath.with_suffix(".zip.part")
        with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for folder in ("raw", *KEPT):
                base = work / folder
                for f in sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []:
                    # zipfile sets the UTF-8 flag for non-ASCII names, so RDE reads 測定.vms as written
                    z.write(f, f"{raw_folder if folder == 'raw' else folder}/{f.relative_to(base).as_posix()}")
            for fname in LABEDGE_KEPT:
                if (work / "labedge" / fname).is_file():
                    z.write(work / "labedge" / fname, f"structured/labedge/{fname}")
        os.replace(part, zpath)
    invoice_path = src / "invoice" / "invoice.json"
    try:
        invoice = json.loads(invoice_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"{invoice_path}: the invoice cannot be read ({exc}); the zip is written") from None
    problems = check_invoice(invoice, schema_path) if schema_path.is_file() else \
        [f"no official invoice schema at {schema_path}: the invoice is not checked"]
    (out / f"{name}.invoice.json").write_text(json.dumps(invoice, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    result = {"package": str(package), "zip": str(zpath), "template": template,
              "metadata_def": summary["metadata_def"], "metadata_values": summary["written"],
              "warnings": summary["warnings"], "invoice_problems": problems}
    (out / f"{name}.export.json").write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return result


def run(args: argparse.Namespace) -> int:
    root_arg = args.templates or os.environ.get("LABEDGE_RDE_TEMPLATES")
    root = Path(root_arg) if root_arg else None
    if root is not None and not root.is_dir():
        print(f"rde-export: --templates {root}: no such folder (it must hold the official template "
              "repositories RDE_XRD, RDE_XPS, ...)", file=sys.stderr)
        return 2
    rc = 0
    for package in args.packages:  # several packages = a dataset, each its own zip and invoice
        try:
            res = export_one(Path(package), args.template, root, Path(args.out))
        except (ExportError, profiles.ProfileError, OSError) as exc:
            print(f"rde-export: {exc}")
            rc = 1
            continue
        print(f"{package}: {res['zip']} ({res['metadata_values']} metadata values, {res['metadata_def']})")
        for w in res["warnings"]:
            print(f"   warning: {w}")
        for p in res["invoice_problems"]:
            print(f"   invoice: {p}")
        if res["invoice_problems"]:
            rc = 1  # the zip is written; RDE would refuse this invoice until the sheet is fixed
    return rc


def add_parser(sub: Any) -> None:
    p = sub.add_parser("rde-export", help="write the RDEFormat zip of stored packages for an official NIMS template")
    p.add_argument("packages", nargs="+", metavar="PACKAGE", help="stored package folder(s); several = a dataset")
    p.add_argument("--template", required=True, metavar="NAME|METADATA_DEF",
                   help=f"an official template profile ({', '.join(profiles.names())}) or a metadata-def.json path")
    p.add_argument("--templates", metavar="DIR", help="folder holding the official template repositories "
                   "(default: $LABEDGE_RDE_TEMPLATES); needed for a profile NAME")
    p.add_argument("--out", required=True, help="output folder (per package: .zip, .invoice.json, .export.json)")
    p.set_defaults(func=run)
