"""``labedge rde-export PACKAGE... --template METADATA_DEF --out DIR``: the RDEFormat zip of a
stored labedge package, for an RDE dataset made from an official NIMS template.

RDEFormat mode (rdetoolkit) copies a zip by folder name and drops everything else (our
``labedge/``, ``invoice/``, ``tasksupport/``), so the zip holds:
- ``nonshared_raw/``: the vendor files (the official templates keep them out of the public raw/);
- ``meta/metadata.json``: the metadata in the template's vocabulary (``translators.rde_template``);
- ``main_image/``, ``structured/``: our images, CSV and HDF5; ``structured/labedge/``: provenance,
  translation report, original metadata and labedge's own metadata, so they survive the import.
Beside the zip: ``<name>.invoice.json`` (the sample sheet's invoice) and, when the template folder
has an ``invoice.schema.json``, the list of problems against it in ``<name>.export.json``.
"""
from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path
from typing import Any

from translators.rde_template import TemplateError, apply_template, load_template

_KEEP = ("main_image", "structured", "other_image")
_OURS = ("provenance.json", "translation_report.json", "original_metadata.json")


class ExportError(ValueError):
    """The package cannot be exported; the message names the package and what is missing."""


def _json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"{path}: {what} cannot be read ({exc})") from None


def invoice_problems(invoice: Any, schema_path: Path | None) -> list[str]:
    if schema_path is None or not schema_path.is_file():
        return []
    import jsonschema

    schema = _json(schema_path, "the template's invoice schema")
    try:
        validator = jsonschema.Draft202012Validator(schema)
    except jsonschema.SchemaError as exc:
        return [f"{schema_path}: not a JSON schema ({exc.message})"]
    return [f"{'/'.join(map(str, e.absolute_path)) or '(invoice)'}: {e.message}"
            for e in sorted(validator.iter_errors(invoice), key=lambda e: list(e.absolute_path))]


def export_package(package: Path, template_path: Path, out_dir: Path) -> dict[str, Any]:
    """Write ``<out>/<package>.zip`` and the invoice beside it; return what was done."""
    data = Path(package) / "data"
    if not (Path(package) / "bagit.txt").is_file() or not data.is_dir():
        raise ExportError(f"{package}: not a labedge package (no bagit.txt / data/)")
    template = load_template(template_path)
    original = _json(data / "labedge" / "original_metadata.json", "original_metadata.json") \
        if (data / "labedge" / "original_metadata.json").is_file() else {}
    metadata, warnings = apply_template(original, template)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = Path(package).name
    zpath = out_dir / f"{name}.zip"
    tmp = zpath.with_suffix(".zip.part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted((data / "raw").rglob("*")) if (data / "raw").is_dir() else []:
            if f.is_file():
                z.write(f, "nonshared_raw/" + f.relative_to(data / "raw").as_posix())
        for folder in _KEEP:
            for f in sorted((data / folder).rglob("*")) if (data / folder).is_dir() else []:
                if f.is_file():
                    z.write(f, f.relative_to(data).as_posix())
        z.writestr("meta/metadata.json", json.dumps(metadata, ensure_ascii=False, indent=2))
        for fname in _OURS:
            if (data / "labedge" / fname).is_file():
                z.write(data / "labedge" / fname, f"structured/labedge/{fname}")
        if (data / "meta" / "metadata.json").is_file():
            z.write(data / "meta" / "metadata.json", "structured/labedge/labedge_metadata.json")
    tmp.replace(zpath)
    invoice = _json(data / "invoice" / "invoice.json", "invoice.json") if (data / "invoice" / "invoice.json").is_file() else {}
    (out_dir / f"{name}.invoice.json").write_text(json.dumps(invoice, ensure_ascii=False, indent=2), encoding="utf-8")
    problems = invoice_problems(invoice, Path(template_path).with_name("invoice.schema.json"))
    result = {"package": str(package), "zip": str(zpath), "template": str(template_path),
              "metadata_values": len(metadata["constant"]) + sum(len(r) for r in metadata["variable"]),
              "warnings": warnings, "invoice_problems": problems}
    (out_dir / f"{name}.export.json").write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    return result


def run(args: argparse.Namespace) -> int:
    rc = 0
    for pkg in args.packages:
        try:
            res = export_package(Path(pkg), Path(args.template), Path(args.out))
        except (ExportError, TemplateError) as exc:
            print(f"rde-export: {exc}")
            rc = 1
            continue
        print(f"{pkg}: {res['zip']} ({res['metadata_values']} metadata values in the template's vocabulary)")
        for w in res["warnings"]:
            print(f"   warning: {w}")
        for p in res["invoice_problems"]:
            print(f"   invoice: {p}")
        if res["invoice_problems"]:
            rc = 1  # the zip is written; RDE would refuse this invoice until the sheet is fixed
    return rc


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("rde-export", help="write the RDEFormat zip of stored packages for an official RDE template")
    p.add_argument("packages", nargs="+", metavar="PACKAGE", help="a stored package folder (with bagit.txt)")
    p.add_argument("--template", required=True, metavar="METADATA_DEF",
                   help="the official template's metadata-def.json (its invoice.schema.json beside it is used)")
    p.add_argument("--out", required=True, help="output folder for the zips and invoices")
    p.set_defaults(func=run)
