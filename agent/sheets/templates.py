"""Sample-sheet templates: RDE ``invoice.schema.json`` files shipped as package data.

A template is looked up by NAME (``config/templates/<name>.json``), never by a path taken from
input: names are checked against ``TEMPLATE_NAME_RE`` first. ``check_template`` applies the RDE
rules (the ones rdetoolkit's validator enforces) plus ours (``label {ja, en}`` on every field),
and returns every problem as a message that names the field.
"""
from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema

from agent.sheets import official
from config import templates_dir

TEMPLATE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
FIELD_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
FIELD_TYPES = ("boolean", "integer", "number", "string")
FORMATS = ("date", "time", "uri", "uuid", "markdown")
OPTION_KEYS = ("unit", "widget", "placeholder", "rows")
#: Keys a custom field may carry (JSON Schema keywords RDE accepts, plus our optional enum labels).
FIELD_KEYS = {"label", "type", "description", "examples", "default", "const", "enum", "maximum", "minimum",
              "exclusiveMaximum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "format", "options",
              "x-enumLabels"}
MAX_TEMPLATE_BYTES = 512 * 1024


class TemplateError(Exception):
    """A template is unknown, unreadable or invalid; the message names the template and field."""


def list_templates() -> list[str]:
    names = []
    for entry in templates_dir().iterdir():
        n = entry.name
        if n.endswith(".json") and TEMPLATE_NAME_RE.match(n[:-5]):
            names.append(n[:-5])
    return sorted(names)


def load_template(name: str) -> dict[str, Any]:
    """The shipped template ``name`` (a fresh copy); raises TemplateError naming what is available."""
    if not isinstance(name, str):
        raise TemplateError(f"template name must be text; available: {', '.join(list_templates())}")
    return copy.deepcopy(_load_checked(name))


@functools.lru_cache(maxsize=64)
def _load_checked(name: str) -> dict[str, Any]:
    # package data does not change while the agent runs; checking once per name is enough
    if not isinstance(name, str) or not TEMPLATE_NAME_RE.match(name):
        raise TemplateError(f"template name {str(name)[:80]!r} is not valid (lower-case letters, digits and '-'); "
                            f"available: {', '.join(list_templates())}")
    entry = templates_dir().joinpath(f"{name}.json")
    if not entry.is_file() and official.is_official(name):
        return official.load(name)  # an instrument's rde_template: the official template's invoice schema
    if not entry.is_file():
        raise TemplateError(f"unknown template {name!r}; available: {', '.join(list_templates())}")
    schema = _parse(entry.read_bytes(), f"template {name!r}")
    problems = check_template(schema)
    if problems:
        raise TemplateError(f"template {name!r} is invalid: " + "; ".join(problems))
    return schema


def load_template_file(path: Path) -> dict[str, Any]:
    """A template file given on the command line (for data architects developing one)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read ({exc.strerror})") from None
    return _parse(data, str(path))


def _parse(data: bytes, where: str) -> dict[str, Any]:
    if len(data) > MAX_TEMPLATE_BYTES:
        raise TemplateError(f"{where}: larger than {MAX_TEMPLATE_BYTES} bytes")
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise TemplateError(f"{where}: not UTF-8 JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise TemplateError(f"{where}: the top level must be a JSON object")
    return obj


def check_template(schema: dict[str, Any]) -> list[str]:
    """Every problem found in ``schema`` (empty list = valid)."""
    out: list[str] = []
    try:
        # RDE writes tuple-style ``items: [...]`` for sample attributes (rdetoolkit reads it as
        # prefixItems); check the rest against the 2020-12 meta-schema the same way.
        jsonschema.Draft202012Validator.check_schema(_as_prefix_items(schema))
    except jsonschema.SchemaError as exc:
        out.append(f"not a valid JSON Schema 2020-12 at {'/'.join(map(str, exc.path)) or 'top'}: {exc.message}")
    if schema.get("$schema") != "https://json-schema.org/draft/2020-12/schema":
        out.append("$schema must be 'https://json-schema.org/draft/2020-12/schema'")
    if schema.get("type") != "object":
        out.append("type must be 'object'")
    props = schema.get("properties")
    if not isinstance(props, dict):
        return out + ["properties: missing (needs 'custom' and/or 'sample')"]
    extra = set(props) - {"custom", "sample"}
    if extra:
        out.append(f"properties: only 'custom' and 'sample' are allowed, found {sorted(extra)}")
    required = schema.get("required", [])
    for part in ("custom", "sample"):
        if part in props and part not in required:
            out.append(f"required: must list {part!r} because properties.{part} exists")
    if "custom" in props:
        out += _check_custom(props["custom"])
    if "sample" in props:
        out += _check_sample(props["sample"])
    return out


def _as_prefix_items(schema: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(schema)
    sample = (out.get("properties") or {}).get("sample")
    props = sample.get("properties") if isinstance(sample, dict) else None
    if isinstance(props, dict):
        for part in ("generalAttributes", "specificAttributes"):
            arr = props.get(part)
            if isinstance(arr, dict) and isinstance(arr.get("items"), list):
                items = arr.pop("items")
                if items:  # RDE writes an empty list for "no terms"; 2020-12 wants none
                    arr["prefixItems"] = items
    return out


def _label_ok(v: Any) -> bool:
    return isinstance(v, dict) and isinstance(v.get("ja"), str) and isinstance(v.get("en"), str) \
        and bool(v["ja"].strip()) and bool(v["en"].strip())


def _check_custom(custom: Any) -> list[str]:
    if not isinstance(custom, dict) or custom.get("type") != "object":
        return ["custom: must be an object schema with type 'object'"]
    out = []
    if not _label_ok(custom.get("label")):
        out.append("custom.label: needs {ja, en}")
    fields = custom.get("properties")
    if not isinstance(fields, dict):
        return out + ["custom.properties: missing"]
    req = custom.get("required")
    if not isinstance(req, list):
        out.append("custom.required: must be a list (may be empty)")
    else:
        out += [f"custom.required: {r!r} is not a field" for r in req if r not in fields]
    for key, f in fields.items():
        out += _check_field(key, f)
    return out


def _check_field(key: str, f: Any) -> list[str]:
    where = f"custom.{key}"
    if not FIELD_KEY_RE.match(key):
        return [f"{where}: field key must be letters, digits and '_' (max 64), starting with a letter"]
    if not isinstance(f, dict):
        return [f"{where}: must be an object"]
    out = []
    if not _label_ok(f.get("label")):
        out.append(f"{where}.label: needs non-empty 'ja' and 'en'")
    t = f.get("type")
    if t not in FIELD_TYPES:
        return out + [f"{where}.type: {t!r} is not one of {', '.join(FIELD_TYPES)}"]
    unknown = set(f) - FIELD_KEYS
    if unknown:
        out.append(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {', '.join(sorted(FIELD_KEYS))}")
    fmt = f.get("format")
    if fmt is not None and (t != "string" or fmt not in FORMATS):
        out.append(f"{where}.format: {fmt!r} needs type string and one of {', '.join(FORMATS)}")
    for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if k in f:
            if t not in ("integer", "number"):
                out.append(f"{where}.{k}: only for integer/number fields")
            elif not isinstance(f[k], int) or isinstance(f[k], bool):
                out.append(f"{where}.{k}: RDE allows only integer bounds, got {f[k]!r}")
    for k in ("minLength", "maxLength", "pattern"):
        if k in f and t != "string":
            out.append(f"{where}.{k}: only for string fields")
    if "pattern" in f:
        try:
            re.compile(f["pattern"])
        except (re.error, TypeError):
            out.append(f"{where}.pattern: not a valid regular expression")
    for k in ("default", "const"):
        if k in f and not _type_ok(t, f[k]):
            out.append(f"{where}.{k}: {f[k]!r} is not of type {t}")
    if "enum" in f:
        if not isinstance(f["enum"], list) or not f["enum"]:
            out.append(f"{where}.enum: must be a non-empty list")
        else:
            out += [f"{where}.enum: {v!r} is not of type {t}" for v in f["enum"] if not _type_ok(t, v)]
            if "default" in f and f["default"] not in f["enum"]:
                out.append(f"{where}.default: {f['default']!r} is not in enum")
    labels = f.get("x-enumLabels")
    if labels is not None and (not isinstance(labels, dict) or not all(_label_ok(v) for v in labels.values())):
        out.append(f"{where}.x-enumLabels: must map enum values to {{ja, en}}")
    opts = f.get("options", {})
    if not isinstance(opts, dict):
        out.append(f"{where}.options: must be an object")
    else:
        bad = set(opts) - set(OPTION_KEYS)
        if bad:
            out.append(f"{where}.options: unknown key(s) {sorted(bad)}; allowed: unit, widget, placeholder, rows")
        if "unit" in opts and not isinstance(opts["unit"], str):
            out.append(f"{where}.options.unit: must be a string")
        if "widget" in opts and (opts["widget"] != "textarea" or not isinstance(opts.get("rows"), int)):
            out.append(f"{where}.options.widget: only 'textarea' is allowed, and it needs an integer 'rows'")
        if "placeholder" in opts and not _label_ok(opts["placeholder"]):
            out.append(f"{where}.options.placeholder: needs {{ja, en}}")
    return out


def _check_sample(sample: Any) -> list[str]:
    if not isinstance(sample, dict) or sample.get("type") != "object":
        return ["sample: must be an object schema with type 'object'"]
    out = []
    if not _label_ok(sample.get("label")):
        out.append("sample.label: needs {ja, en}")
    props = sample.get("properties", {})
    for part, keys in (("generalAttributes", ("termId",)), ("specificAttributes", ("classId", "termId"))):
        arr = props.get(part)
        if arr is None:
            continue
        items = arr.get("items") if isinstance(arr, dict) else None
        if not isinstance(arr, dict) or arr.get("type") != "array" or not isinstance(items, list):
            out.append(f"sample.{part}: must be {{type: array, items: [...]}}")
            continue
        for i, item in enumerate(items):
            for k in keys:
                v = (((item or {}).get("properties") or {}).get(k) or {}).get("const") if isinstance(item, dict) else None
                if not isinstance(v, str) or not UUID_RE.match(v):
                    out.append(f"sample.{part}[{i}].{k}: needs a 'const' UUID")
    return out


def _type_ok(t: str, v: Any) -> bool:
    if t == "boolean":
        return isinstance(v, bool)
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return isinstance(v, str)


def general_terms(schema: dict[str, Any]) -> list[str]:
    items = (((schema.get("properties") or {}).get("sample") or {}).get("properties") or {}) \
        .get("generalAttributes", {}).get("items", [])
    return [it["properties"]["termId"]["const"] for it in items]


def specific_terms(schema: dict[str, Any]) -> list[tuple[str, str]]:
    items = (((schema.get("properties") or {}).get("sample") or {}).get("properties") or {}) \
        .get("specificAttributes", {}).get("items", [])
    return [(it["properties"]["classId"]["const"], it["properties"]["termId"]["const"]) for it in items]


def title(schema: dict[str, Any]) -> dict[str, str]:
    """``description`` written as 'ja / en' gives both titles; otherwise the same text twice."""
    d = str(schema.get("description") or "")
    if " / " in d:
        ja, en = d.split(" / ", 1)
        return {"ja": ja.strip(), "en": en.strip()}
    return {"ja": d, "en": d}
