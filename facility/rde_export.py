"""``labedge rde-export PACKAGE... --template NAME --out DIR``: the RDEFormat zip of stored packages.

RDE's RDEFormat mode (``extended_mode: rdeformat``, docs/rde.md) takes one zip and copies it by
folder name: ``raw/``, ``nonshared_raw/``, ``main_image/``, ``other_image/``, ``meta/``,
``structured/``, ``logs/``, each file flat into its folder (rdetoolkit copies ``f.name``), and a
path component of four digits makes a tile (``divided/0001/``, facility/rde_tiles.py). Everything
else (``invoice/``, ``tasksupport/``, our ``labedge/``) is dropped, so labedge's provenance,
translation report and original metadata go to ``structured/labedge_*.json``. The zip is written
as RDE will hold it: flat names, one per file (two files that would share a name are renamed, with
a warning), so no vendor folder can be taken for a tile and no file silently replaces another. The sample sheet reaches RDE only through the registration invoice: it is
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
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import jsonschema

from facility.rde_tiles import Tile, split_tiles
from translators import profiles
from wire.rde_invoice import as_rdetoolkit_reads, drop_none

#: folders RDE keeps, copied as they are (the vendor file goes to the template's raw folder)
KEPT = ("main_image", "other_image", "meta", "structured", "logs")
#: labedge's own files that must survive RDE: kept as structured/labedge_<name>
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


def check_invoice(invoice: Any, schema_path: Path) -> list[str]:
    """Every way the invoice misses the official schema, each naming its field."""
    try:
        schema = as_rdetoolkit_reads(json.loads(schema_path.read_text(encoding="utf-8")))
        validator = jsonschema.Draft202012Validator(schema)
    except (OSError, ValueError) as exc:
        raise ExportError(f"official invoice schema {schema_path}: cannot be read ({exc})") from None
    except jsonschema.SchemaError as exc:
        raise ExportError(f"official invoice schema {schema_path}: not a JSON schema ({exc.message})") from None
    errors = validator.iter_errors(drop_none(invoice))
    return [_problem(e) for e in sorted(errors, key=lambda e: list(map(str, e.absolute_path)))]


def _problem(e: jsonschema.ValidationError) -> str:
    """One schema error as ``field/path: what`` naming the field; a missing required field by its
    full path and the template's label, so the sheet's user knows which box to fill."""
    where = "/".join(map(str, e.absolute_path))
    m = re.fullmatch(r"'(.+)' is a required property", e.message) if e.validator == "required" else None
    if m:
        field = f"{where}/{m[1]}" if where else m[1]
        label = ((e.schema.get("properties") or {}).get(m[1]) or {}).get("label") if isinstance(e.schema, dict) else None
        named = f" ({label.get('en')} / {label.get('ja')})" if isinstance(label, dict) else ""
        return f"{field}: missing; the official template requires it{named}"
    return f"{where or '(top level)'}: {e.message}"


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


def _entries(tile: Path, raw_folder: str, prefix: str, warnings: list[str]) -> list[tuple[Path, str]]:
    """(file, name in the zip) for one tile: flat in each kept folder, as RDE will hold it."""
    out: list[tuple[Path, str]] = []
    for folder in ("raw", *KEPT):
        base = tile / folder
        files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []
        if folder == "structured" and (tile / "labedge").is_dir():
            files += [tile / "labedge" / f for f in LABEDGE_KEPT if (tile / "labedge" / f).is_file()]
        dest = raw_folder if folder == "raw" else folder
        used: set[str] = set()
        names = [f"labedge_{f.name}" if f.parent == tile / "labedge" and not f.name.startswith("labedge_") else f.name
                 for f in files]
        clash = {n for n in names if names.count(n) > 1}
        for f, n in zip(files, names):
            if n in clash:  # RDE would keep one of them: name each by its folder inside the package
                rel = f.relative_to(tile).as_posix()
                n = rel.split("/", 1)[-1].replace("/", "__")
                warnings.append(f"{prefix}{rel}: written as {dest}/{n} (RDE copies files flat into "
                                f"{dest}/, and another file has the name {f.name})")
            while n in used:
                n = f"_{n}"
            used.add(n)
            out.append((f, f"{prefix}{dest}/{n}"))
    return out


def export_one(package: Path, template: str, templates_root: Path | None, out: Path,
               tiles: str = "auto") -> dict[str, Any]:
    """Write ``<package>.zip``, ``<package>.invoice.json`` and ``<package>.export.json`` into ``out``."""
    src = _data_dir(Path(package))
    name = (src.parent if src.name == "data" else src).name
    out.mkdir(parents=True, exist_ok=True)
    zpath = out / f"{name}.zip"
    with tempfile.TemporaryDirectory(prefix="rde-export-") as tmp:
        work = Path(tmp) / "data"
        shutil.copytree(src, work, symlinks=False)
        summary, raw_folder, schema_path = _rewrite(work, template, templates_root)
        extra: list[Tile] = split_tiles(work, template, templates_root, Path(tmp) / "divided", tiles)
        warnings = list(summary["warnings"]) + [w for t in extra for w in t.warnings]
        entries = _entries(work, raw_folder, "", warnings)
        for t in extra:
            entries += _entries(t.folder, raw_folder, f"divided/{t.index:04d}/", warnings)
        part = zpath.with_suffix(".zip.part")
        with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for f, arc in entries:
                # zipfile sets the UTF-8 flag for non-ASCII names, so RDE reads 測定.vms as written
                z.write(f, arc)
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
              "tiles": 1 + len(extra), "divided": [{"folder": f"divided/{t.index:04d}", "measurement": t.label}
                                                   for t in extra],
              "warnings": warnings, "invoice_problems": problems}
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
            res = export_one(Path(package), args.template, root, Path(args.out), args.tiles)
        except (ExportError, profiles.ProfileError, OSError) as exc:
            print(f"rde-export: {exc}")
            rc = 1
            continue
        tiles = f", {res['tiles']} tiles" if res["tiles"] > 1 else ""
        print(f"{package}: {res['zip']} ({res['metadata_values']} metadata values, {res['metadata_def']}{tiles})")
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
    p.add_argument("--tiles", choices=("auto", "file"), default="auto",
                   help="auto: one RDE tile per measurement where the template describes one measurement (TemDm3, "
                   "Em: a multi-signal DM3 gives divided/0001...); file: always one tile per package")
    p.add_argument("--out", required=True, help="output folder (per package: .zip, .invoice.json, .export.json)")
    p.set_defaults(func=run)
