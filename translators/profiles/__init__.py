"""Output profiles: a package in the vocabulary of one of NIMS's official RDE templates (issue 14 §3).

A profile post-processes what a translator wrote (``labedge/original_metadata.json``) into the
official template's keys, sections and value conventions. The template files themselves are the
site's (NIMS publishes them, MIT); labedge ships none of them: a profile knows where each template
keeps its ``metadata-def.json`` and ``invoice.schema.json`` inside the official repositories, and
the site points ``templates_root`` at its checkout of them.

Generic keys (one vendor key per term, Rigaku) use ``translators.rde_template``; the profiles here
handle templates whose terms are computed (VAMAS blocks, DM tag trees, dates split in parts).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from translators.writer import write_json

#: build(original_metadata, template_def, raw_files) -> (metadata {"constant","variable"}, warnings)
Builder = Callable[[dict[str, Any], dict[str, Any], list[Path]], tuple[dict[str, Any], list[str]]]


class ProfileError(ValueError):
    """Unknown profile, or the official template files are not where the site said."""


@dataclass(frozen=True)
class Profile:
    name: str
    translators: tuple[str, ...]           # labedge translators whose output it accepts
    repo: str                              # the official repository (folder name under templates_root)
    tasksupport: str                       # folder of the template inside the repository
    builder: Builder
    #: metadata-def file name by variant (file suffix or method); "" = the only one
    defs: dict[str, str] = field(default_factory=lambda: {"": "metadata-def.json"})
    raw_folder: str = "nonshared_raw"     # where the official template keeps the vendor file
    defaults: str | None = None           # the template's default_value.csv (constants it always writes)
    #: the measurements one vendor file holds, for templates that describe one measurement per
    #: tile (facility/rde_tiles.py): original -> (index of the main one, [(index, title, original of it)])
    split: Callable[[dict[str, Any]], tuple[int, list[tuple[int, str, dict[str, Any]]]]] | None = None

    def def_path(self, root: Path, variant: str = "") -> Path:
        name = self.defs.get(variant) or self.defs.get("") or next(iter(self.defs.values()))
        return Path(root) / self.repo / self.tasksupport / name

    def invoice_schema_path(self, root: Path) -> Path:
        return Path(root) / self.repo / self.tasksupport / "invoice.schema.json"


def _registry() -> dict[str, Profile]:
    from translators.profiles import aes, dm, phi, vamas, xrd

    return {p.name: p for p in (*xrd.PROFILES, *vamas.PROFILES, *phi.PROFILES, *dm.PROFILES, *aes.PROFILES)}


def names() -> list[str]:
    return sorted(_registry())


def get(name: str) -> Profile:
    try:
        return _registry()[name]
    except KeyError:
        raise ProfileError(f"unknown RDE template {name!r}; known: {', '.join(names())}") from None


def suggest(translator: str) -> list[str]:
    """The official templates that accept a translator's output (for ``labedge translators``)."""
    return [p.name for p in _registry().values() if translator in p.translators]


def load_def(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProfileError(f"official metadata-def {path}: cannot be read ({exc})") from None
    if not isinstance(doc, dict) or not all(isinstance(v, dict) and "schema" in v for v in doc.values()):
        raise ProfileError(f"official metadata-def {path}: not a metadata-def.json (every term needs a schema)")
    return doc


def variant_of(profile: Profile, raw_files: list[Path], original: dict[str, Any]) -> str:
    """Which of the profile's metadata-defs applies (by the raw file's suffix, or the DM method)."""
    from translators.profiles import dm

    if profile.name == "nims-temdm3":
        return dm.method_of(original)
    for suffix in sorted(p.suffix.lower().lstrip(".") for p in raw_files):
        if suffix in profile.defs:
            return suffix
    return ""


def apply_profile(data_dir: Path, name: str, templates_root: Path,
                  raw_files: list[Path] | None = None) -> dict[str, Any]:
    """Rewrite ``data_dir``'s meta/metadata.json and tasksupport/metadata-def.json in the official
    template's vocabulary; labedge's own go to labedge/labedge_metadata*.json. Returns a summary.

    ``raw_files``: the vendor files (default: ``data_dir/raw/*``)."""
    profile = get(name)
    data_dir = Path(data_dir)
    if raw_files is None:
        raw_files = sorted(p for p in (data_dir / "raw").rglob("*") if p.is_file()) if (data_dir / "raw").is_dir() else []
    try:
        original = json.loads((data_dir / "labedge" / "original_metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProfileError(f"{data_dir}: no readable labedge/original_metadata.json ({exc})") from None
    variant = _guarded(name, data_dir, variant_of, profile, list(raw_files), original)
    def_path = profile.def_path(templates_root, variant)
    template = load_def(def_path)
    metadata, warnings = build(profile, data_dir, def_path, template, original, list(raw_files))
    return _write(data_dir, metadata, template) | {"profile": name, "metadata_def": def_path.name,
                                                   "warnings": warnings}


def build(profile: Profile, data_dir: Path, def_path: Path, template: dict[str, Any], original: dict[str, Any],
          raw_files: list[Path]) -> tuple[dict[str, Any], list[str]]:
    """The template's metadata for one measurement (``original``): the builder, then the template's
    default constants; refuses keys the template does not define."""
    metadata, warnings = _guarded(profile.name, data_dir, profile.builder, original, template, raw_files)
    if profile.defaults:
        defaults = _defaults(def_path.parent / profile.defaults, template)
        metadata["constant"] = {**defaults, **metadata["constant"]}
    unknown = sorted(({k for k in metadata["constant"]} | {k for r in metadata["variable"] for k in r}) - set(template))
    if unknown:  # a builder bug, never the vendor's: refuse rather than write an invalid package
        raise ProfileError(f"profile {profile.name} produced keys absent from {def_path.name}: {unknown}")
    return metadata, warnings


def _guarded(name: str, data_dir: Path, fn: Callable[..., Any], *args: Any) -> Any:
    """Vendor values a profile did not foresee become a ProfileError (the package keeps labedge's
    vocabulary), never a crash of the translation."""
    try:
        return fn(*args)
    except Exception as exc:
        raise ProfileError(f"profile {name} could not map {data_dir.name}'s metadata "
                           f"({type(exc).__name__}: {exc})") from None


def apply_def(data_dir: Path, def_path: Path) -> dict[str, Any]:
    """As ``apply_profile``, for a metadata-def the site names by path: every term is one vendor
    key (``originalName``), as in the Rigaku and VAMAS templates (``translators.rde_template``)."""
    from translators.rde_template import apply_template

    data_dir = Path(data_dir)
    template = load_def(def_path)
    try:
        original = json.loads((data_dir / "labedge" / "original_metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProfileError(f"{data_dir}: no readable labedge/original_metadata.json ({exc})") from None
    metadata, warnings = apply_template(original, template)
    return _write(data_dir, metadata, template) | {"profile": None, "metadata_def": str(def_path), "warnings": warnings}


def _write(data_dir: Path, metadata: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    """The template's metadata and def in meta/ and tasksupport/; labedge's own kept under labedge/."""
    labedge = data_dir / "labedge"
    for src, dst in (("meta/metadata.json", "labedge_metadata.json"), ("tasksupport/metadata-def.json",
                                                                       "labedge_metadata-def.json")):
        if (data_dir / src).is_file() and not (labedge / dst).exists():  # once: a second profile keeps the first's
            (data_dir / src).replace(labedge / dst)
    write_json(data_dir / "meta" / "metadata.json", metadata)
    write_json(data_dir / "tasksupport" / "metadata-def.json", template)
    return {"terms": len(template), "written": len(metadata["constant"]) + sum(len(r) for r in metadata["variable"])}


def _defaults(path: Path, template: dict[str, Any]) -> dict[str, Any]:
    """The template's own default constants (``key,value`` CSV), for the terms it defines."""
    import csv

    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return {r["key"]: {"value": r["value"]} for r in csv.DictReader(f)
                    if r.get("key") in template and r.get("value") not in (None, "")}
    except (OSError, KeyError, csv.Error):
        return {}


def entry(value: Any, term: dict[str, Any], unit: str | None = None) -> dict[str, Any]:
    """One metadata.json entry with the template's unit (or the one the file states)."""
    e: dict[str, Any] = {"value": value}
    u = unit if unit is not None else term.get("unit")
    if u and not str(u).startswith("$"):
        e["unit"] = u
    return e
