"""Mapping files for the generic text translator (TOML or JSON): load and check them.

Built-in mappings are package data (``translators/generic_text/mappings``); a site adds its
own by listing files or folders in ``LABEDGE_GENERIC_TEXT_MAPPINGS`` (os.pathsep-separated,
set by the agent from its configuration or by ``labedge translate --mapping``).
"""
from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENV_VAR = "LABEDGE_GENERIC_TEXT_MAPPINGS"
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_TYPES = {"string", "number", "integer", "boolean", "date-time"}
_TOP_KEYS = {"mapping", "match", "header", "data", "plot", "columns", "terms"}


class MappingFileError(ValueError):
    """A mapping file is malformed; the message names the file and the key."""


@dataclass
class TextMapping:
    name: str
    version: str
    description: str
    source: str
    encodings: list[str]
    suffixes: list[str]
    required_keys: list[str]
    header_contains: list[str]
    separators: list[str]
    comment_prefixes: list[str]
    delimiter: str
    min_columns: int
    columns: dict[str, tuple[str, str | None]]  # original (lower-case) -> (name, unit)
    terms: list[dict[str, Any]]
    plot: dict[str, str] = field(default_factory=dict)
    #: block-structured files: data rows start after the line equal to ``data_after`` (e.g.
    #: "[NetCounts]") and end at the first line starting with ``data_stop`` (e.g. "[")
    data_after: str = ""
    data_stop: str = ""
    #: "line" = the line before the data names the columns; "numbered" = a grid without names
    column_names: str = "line"

    def vocabulary(self) -> dict[str, Any]:
        vocab: dict[str, Any] = {}
        for i, t in enumerate(self.terms, 10):
            schema = {"type": "string", "format": "date-time"} if t["type"] == "date-time" else {"type": t["type"]}
            entry: dict[str, Any] = {"name": {"ja": t["ja"], "en": t["en"]}, "schema": schema}
            if t.get("unit"):
                entry["unit"] = t["unit"]
            entry["originalName"] = t["original"]
            entry["order"] = i
            if t.get("parse"):
                entry["labedge"] = {"parse": t["parse"]}
            vocab[t["key"]] = entry
        return vocab


def _req(d: dict[str, Any], key: str, where: str, kind: type) -> Any:
    if key not in d:
        raise MappingFileError(f"{where}: missing required key {key!r}")
    if not isinstance(d[key], kind):
        raise MappingFileError(f"{where}: {key!r} must be a {kind.__name__}")
    return d[key]


def parse_mapping(doc: dict[str, Any], source: str) -> TextMapping:
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise MappingFileError(f"{source}: unknown section(s) {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    m = _req(doc, "mapping", source, dict)
    match = doc.get("match", {})
    header, data, plot = doc.get("header", {}), doc.get("data", {}), doc.get("plot", {})
    cols: dict[str, tuple[str, str | None]] = {}
    for i, c in enumerate(doc.get("columns", [])):
        where = f"{source}: columns[{i}]"
        name = _req(c, "name", where, str)
        if not _KEY.match(name):
            raise MappingFileError(f"{where}: name {name!r} must be snake_case")
        cols[_req(c, "original", where, str).strip().lower()] = (name, c.get("unit"))
    terms = []
    for i, t in enumerate(doc.get("terms", [])):
        where = f"{source}: terms[{i}]"
        key = _req(t, "key", where, str)
        if not _KEY.match(key):
            raise MappingFileError(f"{where}: key {key!r} must be snake_case (a-z, 0-9, _)")
        if t.get("type", "string") not in _TYPES:
            raise MappingFileError(f"{where}: type {t.get('type')!r}; allowed: {sorted(_TYPES)}")
        if t.get("parse") not in (None, "datetime", "first_number"):
            raise MappingFileError(f"{where}: parse {t['parse']!r}; allowed: datetime, first_number")
        terms.append({"key": key, "original": _req(t, "original", where, str), "type": t.get("type", "string"),
                      "unit": t.get("unit"), "parse": t.get("parse"),
                      "ja": _req(t, "ja", where, str), "en": _req(t, "en", where, str)})
    if not match.get("required_keys") and not match.get("header_contains"):
        raise MappingFileError(f"{source}: [match] needs required_keys or header_contains, "
                               "or the mapping would claim every text file")
    return TextMapping(
        name=_req(m, "name", f"{source}: [mapping]", str), version=str(m.get("version", "1")),
        description=str(m.get("description", "")), source=source,
        encodings=list(m.get("encodings", [])),  # empty: detect (BOM, UTF-8, cp932/cp1252)
        suffixes=[s.lower() for s in match.get("suffixes", [".txt", ".dat", ".csv"])],
        required_keys=[k.lower() for k in match.get("required_keys", [])],
        header_contains=[str(h) for h in match.get("header_contains", [])],
        separators=list(header.get("separators", [":", "=", "\t"])),
        comment_prefixes=list(header.get("comment_prefixes", ["#", ";"])),
        delimiter=str(data.get("delimiter", "auto")), min_columns=int(data.get("min_columns", 2)),
        columns=cols, terms=terms, plot={k: str(v) for k, v in plot.items()},
        data_after=str(data.get("start_after", "")), data_stop=str(data.get("stop_at", "")),
        column_names=_choice(data.get("column_names", "line"), ("line", "numbered"), f"{source}: [data] column_names"))


def _choice(v: Any, allowed: tuple[str, ...], where: str) -> str:
    if v not in allowed:
        raise MappingFileError(f"{where} is {v!r}; allowed: {', '.join(allowed)}")
    return str(v)


def load_mapping_file(path: Path) -> TextMapping:
    try:
        raw = path.read_bytes()
        doc = json.loads(raw) if path.suffix.lower() == ".json" else tomllib.loads(raw.decode("utf-8"))
    except (OSError, ValueError, tomllib.TOMLDecodeError) as exc:
        raise MappingFileError(f"{path}: cannot be read as {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}") \
            from None
    return parse_mapping(doc, str(path))


def load_mappings() -> tuple[list[TextMapping], list[str]]:
    """Built-in mappings plus the site's; errors are returned, not raised (one bad file skips itself)."""
    out: list[TextMapping] = []
    errors: list[str] = []
    for res in sorted(resources.files("translators.generic_text").joinpath("mappings").iterdir(),
                      key=lambda r: r.name):
        if res.name.endswith((".toml", ".json")):
            try:
                doc = json.loads(res.read_text("utf-8")) if res.name.endswith(".json") else \
                    tomllib.loads(res.read_text("utf-8"))
                out.append(parse_mapping(doc, f"built-in {res.name}"))
            except (ValueError, MappingFileError) as exc:
                errors.append(str(exc))
    for item in filter(None, os.environ.get(ENV_VAR, "").split(os.pathsep)):
        p = Path(item)
        files = sorted(p.glob("*.toml")) + sorted(p.glob("*.json")) if p.is_dir() else [p]
        for f in files:
            try:
                out.append(load_mapping_file(f))
            except MappingFileError as exc:
                errors.append(str(exc))
    return out, errors
