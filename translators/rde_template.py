"""Write a package in an official RDE template's vocabulary (issue 14 §3, first step).

The site gives the template's own ``metadata-def.json`` (NIMS publishes them; nothing of them
is shipped with labedge). Each of its terms names a vendor key in ``originalName``; the value
is taken verbatim from labedge's ``original_metadata`` (the same vendor key, without Rigaku's
``*``), typed by the term's schema, with the term's unit (a ``$KEY`` unit names the vendor key
holding it). labedge's own richer metadata moves to ``labedge/labedge_metadata.json`` and its
vocabulary to ``labedge/labedge_metadata-def.json``, so nothing is lost.

Done: the generic engine and the Rigaku ``.ras`` templates (key-by-key equal to the official
program's output, tests/translators/test_rde_template.py). Not done: templates whose terms are
not one vendor key each (rasx XML paths, VAMAS, AES, TemDm3), config selection, rde-export.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from translators.writer import ValueRejected, coerce, flatten, write_json


#: Not copied on purpose: the official RDE_XRD program strips every "*" from text values
#: ("160*C" -> "160C"); labedge keeps the vendor's text.
#: value conventions of the official programs, as observed in their outputs for the shared samples
#: (vendor key -> vendor value -> the official spelling); extend only from observed outputs
CONVENTIONS: dict[str, dict[str, str]] = {
    "meas_scan_axis_x": {"TwoThetaTheta": "2Theta-Theta", "2θ/θ": "2Theta-Theta"},
    "meas_cond_xg_wave_type": {"Ka": "K_alpha", "Ka1": "K_alpha1"},
    "axisname": {"TwoThetaTheta": "2Theta-Theta", "2θ/θ": "2Theta-Theta"},  # .rasx
    "wavetype": {"Ka": "K_alpha", "Ka1": "K_alpha1"},
}


class TemplateError(ValueError):
    """The template file is missing or not a metadata-def.json."""


def load_template(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TemplateError(f"RDE template {path}: cannot be read as JSON ({exc})") from None
    if not isinstance(doc, dict) or not all(isinstance(v, dict) and "schema" in v for v in doc.values()):
        raise TemplateError(f"RDE template {path}: not a metadata-def.json (every term needs a schema)")
    return doc


def _norm(key: str) -> str:
    return key.rsplit("/", 1)[-1].lstrip("*$@").strip().lower().replace(" ", "_")


#: another spelling of a vendor key in a template's originalName (ISO 14976 field names)
ALIASES = {"year_in_full": "year", "day_of_month": "day",
           "values_of_experimental_variables": "experimental_variable_values"}


def _leaves(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf paths like ``writer.flatten``, but a list of plain values stays one value."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_leaves(v, f"{prefix}/{k}" if prefix else str(k)))
        return out
    if isinstance(obj, (list, tuple)) and any(isinstance(v, dict) for v in obj):
        out = {}
        for i, v in enumerate(obj):
            out.update(_leaves(v, f"{prefix}/{i}" if prefix else str(i)))
        return out
    return {prefix: obj}


def _groups(original: dict[str, Any]) -> list[dict[str, Any]]:
    """One vendor-key index per scan or VAMAS block (``scans/N/``, ``blocks/N/``), or one for the file."""
    groups: dict[int, dict[str, Any]] = {}
    common: dict[str, Any] = {}
    for path, v in _leaves(original).items():
        m = re.match(r"(?:scans|blocks)/(\d+)/", path)
        (groups.setdefault(int(m[1]), {}) if m else common).setdefault(_norm(path), v)
    return [{**common, **g} for _, g in sorted(groups.items())] or [common]


def _text_of(v: Any) -> Any:
    """A list of lines (a comment) as one text, as the official programs write it."""
    if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
        return "\n".join(x.rstrip() for x in v) if len(v) > 1 else (v[0].rstrip() if v else "")
    return v


def _vamas_computed(src: dict[str, Any]) -> dict[str, Any]:
    """Terms of the NIMS VAMAS template that are computed, not read (keyed by template term)."""
    out: dict[str, Any] = {}
    if src.get("abscissa_label") is not None:
        out["abscissa_label"] = f"{src['abscissa_label']} ({src.get('abscissa_units', '')})"
    cv = src.get("corresponding_variables")
    if isinstance(cv, (list, tuple)) and cv and all(isinstance(x, (list, tuple)) and len(x) == 2 for x in cv):
        out["corresponding_variables_label"] = f"{','.join(x[0] for x in cv)} ({','.join(x[1] for x in cv)})"
        n, start, step = src.get("number_of_ordinate_values"), src.get("abscissa_start"), src.get("abscissa_increment")
        try:
            # the end of the abscissa: points per variable, not all ordinate values (the official
            # program counts every variable's values; we do not copy that)
            out["abscissa_end"] = f"{float(start) + float(step) * (int(n) // len(cv) - 1):g}"
        except (TypeError, ValueError):
            pass
    bc = src.get("block_comment")
    if isinstance(bc, (list, tuple)):
        out["number_of_lines_in_block_comment"] = str(len(bc))
    return out


#: template terms labedge leaves out on purpose (docs/rde.md): the VAMAS template fills
#: "xray_power" (W) with the source's characteristic energy (eV)
NOT_COPIED = {"xray_power"}


def _is_no_value(v: Any) -> bool:
    """VAMAS writes 1E37 for "no value"; the official programs leave such terms out."""
    try:
        return abs(float(v)) >= 1e37
    except (TypeError, ValueError):
        return False


def apply_template(original: dict[str, Any], template: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """metadata.json in the template's keys, and warnings for values that do not fit."""
    warnings: list[str] = []
    groups = _groups(original)
    constant: dict[str, Any] = {}
    variable: list[dict[str, Any]] = [{} for _ in groups]
    computed = [_vamas_computed(g) for g in groups]
    for key, term in template.items():
        orig = term.get("originalName")
        if key in NOT_COPIED or (not orig and key not in computed[0]):
            continue
        rows = range(len(groups)) if term.get("variable") else range(1)
        for i in rows:
            src = groups[i]
            if orig:
                name = _norm(orig)
                raw = _text_of(src.get(ALIASES.get(name, name)))
                if name == "number_of_lines_in_block_comment" and name not in src:
                    raw = computed[i].get(name)
            else:
                raw = computed[i].get(key)
            if raw is None or raw == "" or _is_no_value(raw):
                continue  # an empty element is absent, as in the official outputs
            if isinstance(raw, str) and not raw.strip() and term["schema"].get("type") != "string":
                continue  # a blank number is absent; a blank text (" ") is written as "" (as the official programs do)
            if isinstance(raw, str):
                raw = CONVENTIONS.get(_norm(orig or ""), {}).get(raw.strip(), raw)
            try:
                value = coerce(raw.strip() if isinstance(raw, str) else raw, term["schema"])
            except (ValueRejected, ValueError, TypeError) as exc:
                warnings.append(f"template term {key} ({orig}): {exc}; left out")
                continue
            entry: dict[str, Any] = {"value": value}
            unit = term.get("unit")
            if isinstance(unit, str) and unit.startswith("$"):
                unit = src.get(_norm(unit))
            if unit:
                entry["unit"] = unit
            (variable[i] if term.get("variable") else constant)[key] = entry
    return {"constant": constant, "variable": [r for r in variable if r] if any(variable) else []}, warnings


def write_template(out_dir: Path, template_path: Path, report: dict[str, Any]) -> dict[str, Any]:
    """Rewrite ``out_dir``'s meta/metadata.json and tasksupport/metadata-def.json in the template's
    vocabulary; labedge's own go under labedge/. Updates and returns the report."""
    template = load_template(template_path)
    original = json.loads((out_dir / "labedge" / "original_metadata.json").read_text(encoding="utf-8"))
    metadata, warnings = apply_template(original, template)
    (out_dir / "meta" / "metadata.json").replace(out_dir / "labedge" / "labedge_metadata.json")
    (out_dir / "tasksupport" / "metadata-def.json").replace(out_dir / "labedge" / "labedge_metadata-def.json")
    write_json(out_dir / "meta" / "metadata.json", metadata)
    write_json(out_dir / "tasksupport" / "metadata-def.json", template)
    report["rde_template"] = {"source": str(template_path), "terms": len(template),
                              "written": len(metadata["constant"]) + sum(len(r) for r in metadata["variable"])}
    report["warnings"] = list(report.get("warnings", [])) + warnings
    if warnings:
        report["status"] = "partial"
    files = set(report.get("files", []))
    files |= {"labedge/labedge_metadata.json", "labedge/labedge_metadata-def.json"}
    report["files"] = sorted(files)
    return report
