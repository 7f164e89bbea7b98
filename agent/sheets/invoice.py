"""Sheet values -> RDE ``invoice.json``, and the ``*.sheet.json`` document the page saves.

RDE rules (BRIEF §3): invoice.json carries only ``datasetId``, ``basic``, ``custom`` and ``sample``;
a new sample has ``sampleId: null``; owner ids are 56 alphanumerics. ``check_invoice`` repeats
what rdetoolkit's validator does (None values dropped, ``items`` read as ``prefixItems``) so a
bad invoice is caught before it is written, not at the facility.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import jsonschema

from agent.sheets.form import SheetInvalid, form_model, validate_values
from agent.sheets.templates import TemplateError, general_terms, load_template, specific_terms
from wire.rde_invoice import as_rdetoolkit_reads, drop_none

SHEET_FORMAT = "labedge-sheet"
SHEET_VERSION = 1
MAX_SHEET_BYTES = 256 * 1024
SHEET_ID_RE = re.compile(r"^[A-Za-z0-9-]{8,64}$")
OWNER_RE = re.compile(r"^[0-9a-zA-Z]{56}$")


class SheetError(Exception):
    """A sheet document is unreadable or invalid; the message names the source and the field."""


class InvoiceInvalid(Exception):
    """A built invoice does not validate against its schema (a bug or a bad template)."""


@dataclass
class SheetDoc:
    template: str
    values: dict[str, Any]        # cleaned, typed
    sheet_id: str
    saved_at: str | None = None


def new_sheet_id() -> str:
    return str(uuid.uuid4())


def parse_sheet(data: bytes | dict[str, Any], where: str, *, choices: dict | None = None) -> SheetDoc:
    """A sheet JSON (from a file or a POST body), checked as hostile input."""
    if isinstance(data, (bytes, bytearray)):
        if len(data) > MAX_SHEET_BYTES:
            raise SheetError(f"{where}: larger than {MAX_SHEET_BYTES // 1024} KiB; a sample sheet is a few KiB")
        try:
            obj = json.loads(bytes(data).decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise SheetError(f"{where}: not a UTF-8 JSON sample sheet ({exc})") from None
    else:
        obj = data
    if not isinstance(obj, dict) or obj.get("format") != SHEET_FORMAT:
        raise SheetError(f"{where}: not a labedge sample sheet (needs \"format\": \"{SHEET_FORMAT}\")")
    if obj.get("version") != SHEET_VERSION:
        raise SheetError(f"{where}: sheet version {str(obj.get('version'))[:20]!r} is not supported "
                         f"(this agent reads version {SHEET_VERSION})")
    name = obj.get("template")
    try:
        schema = load_template(name) if isinstance(name, str) else load_template("")
    except TemplateError as exc:
        raise SheetError(f"{where}: {exc}") from None
    try:
        values = validate_values(form_model(name, schema, choices), obj.get("values"))
    except SheetInvalid as exc:
        raise SheetError(f"{where}: " + "; ".join(f"field {k}: {v['en']}" for k, v in exc.errors.items())) from None
    sid = obj.get("sheet_id")
    if not isinstance(sid, str) or not SHEET_ID_RE.match(sid):
        sid = new_sheet_id()
    saved = obj.get("saved_at") if isinstance(obj.get("saved_at"), str) else None
    return SheetDoc(template=name, values=values, sheet_id=sid, saved_at=(saved or "")[:40] or None)


def build_invoice(schema: dict[str, Any], values: dict[str, Any], *, data_name: str, default_owner_id: str,
                  today: str | None = None, derived: dict[str, Any] | None = None) -> dict[str, Any]:
    """The RDE invoice for one measurement from cleaned sheet ``values``; a custom field left empty
    takes its value from ``derived`` (agent.sheets.derive: what the measurement gives)."""
    owner = values.get("basic.dataOwnerId") or default_owner_id
    if not OWNER_RE.match(owner):
        raise InvoiceInvalid(f"data owner id {owner[:60]!r} is not 56 letters/digits")
    props = schema.get("properties", {})
    custom: dict[str, Any] = {}
    for key, f in props.get("custom", {}).get("properties", {}).items():
        v = values.get(f"custom.{key}")
        if v is None:
            v = (derived or {}).get(key)
        custom[key] = f["const"] if "const" in f else v
    inv: dict[str, Any] = {
        "datasetId": values.get("datasetId") or "",
        "basic": {
            "dateSubmitted": values.get("basic.dateSubmitted") or today or dt.date.today().isoformat(),
            "dataOwnerId": owner,
            "dataName": (values.get("basic.dataName") or data_name or "measurement")[:255],
            "instrumentId": None,
            "experimentId": values.get("basic.experimentId"),
            "description": values.get("basic.description"),
        },
        "custom": custom,
    }
    if "sample" in props:
        name = values.get("sample.names")
        inv["sample"] = {
            "sampleId": None,  # a new sample: RDE assigns the id
            "names": [name] if name else [data_name or "sample"],
            "composition": values.get("sample.composition"),
            "referenceUrl": None,
            "description": values.get("sample.description"),
            "generalAttributes": [{"termId": t, "value": None} for t in general_terms(schema)],
            "specificAttributes": [{"classId": c, "termId": t, "value": None} for c, t in specific_terms(schema)],
            "ownerId": owner,
        }
    problems = check_invoice(inv, schema)
    if problems:
        raise InvoiceInvalid("; ".join(problems))
    return inv


_BASIC_SCHEMA = {
    "type": "object", "required": ["datasetId", "basic"],
    "properties": {
        "datasetId": {"type": "string"},
        "basic": {"type": "object", "required": ["dateSubmitted", "dataOwnerId", "dataName"],
                  "properties": {"dateSubmitted": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
                                 "dataOwnerId": {"type": "string", "pattern": OWNER_RE.pattern},
                                 "dataName": {"type": "string"}}},
        "sample": {"type": "object", "required": ["names", "ownerId"],
                   "properties": {"names": {"type": "array"},
                                  "ownerId": {"type": "string", "pattern": OWNER_RE.pattern}}},
    },
}


def check_invoice(invoice: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Problems rdetoolkit would report for ``invoice`` against ``schema`` (empty = valid)."""
    data = drop_none(invoice)
    allowed = {"datasetId", "basic"} | set(schema.get("required", []))
    out = [f"{k}: not allowed in invoice.json (allowed: {', '.join(sorted(allowed))})" for k in data if k not in allowed]
    sch = as_rdetoolkit_reads(schema)
    for s in (_BASIC_SCHEMA, sch):
        for err in jsonschema.Draft202012Validator(s).iter_errors(data):
            out.append(f"{'.'.join(map(str, err.absolute_path)) or 'invoice'}: {err.message}")
    return out
