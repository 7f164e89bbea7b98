"""Turn a :class:`TranslationResult` into the RDE layout, and stamp provenance once.

Every translator returns plain data; this module alone decides file names, units, types and
the report, so all translators produce the same shape (the yadg lesson: provenance and units
are the framework's job, not each extractor's).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

from translators.contract import TranslationResult

REPORT_FORMAT = 1
MAX_VALUE_BYTES = 1024  # rdetoolkit rejects longer metadata strings
#: What Windows (and the upload protocol, wire.protocol._BAD_NAME) refuses in a file name.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
_RDE_DROPPED = (".bak", ".tmp", "~", ".swp")


def labedge_version() -> str:
    try:
        from importlib.metadata import version
        return version("labedge")
    except Exception:  # noqa: BLE001 - not installed (frozen build without metadata)
        return "unknown"


def safe_name(name: str, default: str = "data") -> str:
    """A file-name stem that survives Windows, zips and RDE (which drops *.tmp, *~ ...).

    Letters of every script are kept (``測定 データ 01 (試料A)`` stays as it is): only what Windows
    forbids in a name is replaced, trailing dots and spaces go, and a reserved device name
    (CON, NUL, COM1, ...) gets a leading underscore. NFC, so a name from macOS (NFD) matches.
    """
    s = _UNSAFE.sub("_", unicodedata.normalize("NFC", name)).strip(" ._")[:100].rstrip(" .") or default
    while s.lower().endswith(_RDE_DROPPED):
        s = s.rstrip("~").rsplit(".", 1)[0] + "_" if "." in s else s.rstrip("~") + "_"
    if s.split(".", 1)[0].rstrip(" ").upper() in _WINDOWS_RESERVED:
        s = "_" + s
    return s or default


def unique_name(name: str, used: set[str]) -> str:
    """``name``, or ``name_2``, ``name_3`` ... so no two outputs collide, compared as Windows does
    (case-insensitively); ``used`` holds the casefolded names taken so far."""
    candidate, n = name, 1
    while candidate.casefold() in used:
        n += 1
        candidate = f"{name}_{n}"
    used.add(candidate.casefold())
    return candidate


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def provenance(raw_files: Sequence[Path], translator: str | None, version: str | None,
               known_sha256: dict[str, str] | None = None) -> dict[str, Any]:
    """Stamped by the framework, not by translators. ``known_sha256`` (resolved path -> digest) are
    hashes the package builder computed while copying: a multi-GB file is not read a second time."""
    known = known_sha256 or {}
    sources = []
    for p in raw_files:
        try:
            digest = known.get(str(Path(p).resolve())) or sha256_file(p)
            sources.append({"name": p.name, "size": p.stat().st_size, "sha256": digest})
        except OSError as exc:
            sources.append({"name": p.name, "error": f"could not read: {exc.strerror or exc}"})
    return {"translator": translator, "translator_version": version, "labedge_version": labedge_version(),
            "translated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "sources": sources}


# ---- values -------------------------------------------------------------------------------

class ValueRejected(ValueError):
    """A value does not fit its vocabulary entry's schema."""


def coerce(value: Any, schema: dict[str, Any]) -> Any:
    """Convert ``value`` to the JSON type named by ``schema['type']``; raise ValueRejected if impossible."""
    kind = schema.get("type", "string")
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        value = value.item()
    if kind == "number":
        if isinstance(value, bool):
            raise ValueRejected(f"{value!r} is a boolean, not a number")
        v = float(value.strip() if isinstance(value, str) else value)
        if not math.isfinite(v):
            raise ValueRejected(f"{value!r} is not a finite number")
        return int(v) if isinstance(value, int) else v
    if kind == "integer":
        v = float(value.strip() if isinstance(value, str) else value)
        if not math.isfinite(v) or v != int(v):
            raise ValueRejected(f"{value!r} is not an integer")
        return int(v)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        s = str(value).strip().lower()
        if s in ("true", "1", "yes", "on"):
            return True
        if s in ("false", "0", "no", "off"):
            return False
        raise ValueRejected(f"{value!r} is not a boolean")
    if kind == "array":
        if isinstance(value, (list, tuple)):
            return list(value)
        raise ValueRejected(f"{value!r} is not a list")
    s = value if isinstance(value, str) else str(value)
    if len(s.encode("utf-8")) > MAX_VALUE_BYTES:
        raise ValueRejected(f"string of {len(s.encode('utf-8'))} bytes is longer than {MAX_VALUE_BYTES}")
    if schema.get("format") == "date-time":
        try:
            datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError:
            raise ValueRejected(f"{s!r} is not an ISO 8601 date-time") from None
    return s


def _map_block(values: dict[str, Any], vocab: dict[str, Any], where: str, warnings: list[str],
               mapped: list[dict[str, Any]], unparsed: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        if value is None:
            continue
        term = vocab.get(key)
        if term is None:
            warnings.append(f"{where}: key {key!r} is not in the translator's vocabulary; "
                            "kept only in original_metadata.json")
            continue
        try:
            v = coerce(value, term.get("schema", {}))
        except (ValueError, TypeError) as exc:
            # never dropped silently: the text goes to the report verbatim, and status is partial
            text = value if isinstance(value, str) else json.dumps(value, default=_json_default)
            unparsed.append({"key": key, "where": where, "originalName": term.get("originalName"),
                             "value": text[:MAX_VALUE_BYTES], "problem": str(exc)})
            warnings.append(f"{where}: {key} ({term.get('originalName', key)}): {exc}; "
                            "kept verbatim in the report (unparsed_values), not in metadata.json")
            continue
        entry: dict[str, Any] = {"value": v}
        if term.get("unit"):
            entry["unit"] = term["unit"]
        out[key] = entry
        mapped.append({"key": key, "where": where, "originalName": term.get("originalName"),
                       "name_en": term.get("name", {}).get("en"), "value": v, "unit": term.get("unit")})
    return out


def build_metadata(result: TranslationResult, vocab: dict[str, Any], unparsed: list[dict[str, Any]] | None = None
                   ) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """metadata.json content, the list of mapped terms, and warnings (bad values go to ``unparsed``)."""
    warnings: list[str] = []
    mapped: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = [] if unparsed is None else unparsed
    constant = _map_block(result.constant, vocab, "constant", warnings, mapped, bad)
    variable = [_map_block(row, vocab, f"variable[{i}]", warnings, mapped, bad)
                for i, row in enumerate(result.variable)]
    return {"constant": constant, "variable": variable}, mapped, warnings


# ---- vendor keys --------------------------------------------------------------------------

def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf paths of a nested dict/list, joined with '/' (list items by index)."""
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}/{k}" if prefix else str(k)))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(flatten(v, f"{prefix}/{i}" if prefix else str(i)))
    else:
        out[prefix] = obj
    return out


def leaf_keys(obj: Any, prefix: str = "") -> list[str]:
    """Vendor keys for the report's counts: leaf paths, where a list of plain values (an array,
    a repeated key's values) is one key, not one key per element."""
    if isinstance(obj, dict):
        out: list[str] = []
        for k, v in obj.items():
            out += leaf_keys(v, f"{prefix}/{k}" if prefix else str(k))
        return out
    if isinstance(obj, (list, tuple)) and any(isinstance(v, (dict, list, tuple)) for v in obj):
        out = []
        for i, v in enumerate(obj):
            out += leaf_keys(v, f"{prefix}/{i}" if prefix else str(i))
        return out
    return [prefix]


def _name_forms(name: str) -> set[str]:
    """A vocabulary's vendor name and its spellings: 'A / B' alternatives, 'Mono.d_spacing' paths."""
    out = set()
    for alt in re.split(r"\s+/\s+|\s*;\s*", name.strip()):
        alt = alt.strip()
        if alt:
            out |= {alt.lower(), alt.replace(".", "/").lower(), alt.replace(":", "/").lower()}
    return out


def unmapped_keys(original: dict[str, Any], mapped_original_names: Iterable[str]) -> list[str]:
    """Vendor leaf keys that no mapped vocabulary term points at (by full path or path suffix)."""
    names: set[str] = set()
    for n in mapped_original_names:
        if n:
            names |= _name_forms(str(n))
    out = []
    for path in leaf_keys(original):
        parts = path.lower().split("/")
        suffixes = {"/".join(parts[i:]) for i in range(len(parts))}
        # an indexed element of a mapped list ("Region/3/@Name") counts through its list's name
        suffixes |= {"/".join(p for p in s.split("/") if not p.isdigit()) for s in list(suffixes)}
        if not names & suffixes:
            out.append(path)
    return out


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, bytes):
        return o.decode("latin-1")
    return str(o)


def write_json(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2, default=_json_default, allow_nan=False)
                    if _finite(obj) else json.dumps(_clean(obj), ensure_ascii=False, indent=2,
                                                     default=_json_default), encoding="utf-8")
    return path


def _finite(obj: Any) -> bool:
    try:
        json.dumps(obj, allow_nan=False, default=_json_default)
        return True
    except ValueError:
        return False


def _clean(obj: Any) -> Any:
    """Replace NaN/inf (not JSON) by None so the file stays valid JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


# ---- files --------------------------------------------------------------------------------

def write_csv(path: Path, columns: dict[str, Any], units: dict[str, str | None]) -> Path:
    """Numeric CSV with a header naming each column and its unit, e.g. ``2theta (deg)``."""
    import numpy as np

    names = list(columns)
    if not names:
        raise ValueError("table has no columns")
    arrays = [np.asarray(columns[n]).ravel() for n in names]
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError("table columns have different lengths: "
                         + ", ".join(f"{k}={len(a)}" for k, a in zip(names, arrays)))
    header = [f"{k} ({units[k]})" if units.get(k) else k for k in names]
    header = [h.replace(",", ";").replace("\n", " ") for h in header]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(",".join(header) + "\n")
        if n:
            # one float64 block is fastest for savetxt; "%d" keeps integer columns exact and short
            fmt = ",".join("%d" if a.dtype.kind in "iub" else "%.10g" for a in arrays)
            np.savetxt(fh, np.column_stack([a.astype(np.float64) for a in arrays]), fmt=fmt, delimiter=",")
    return path


def _attr(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)):
        return v
    return json.dumps(v, ensure_ascii=False, default=_json_default)


def write_h5(path: Path, arrays: Sequence[Any], root_attrs: dict[str, Any]) -> Path:
    """All arrays of one result in one HDF5 file, gzip-compressed, metadata as attributes."""
    import h5py
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h5:
        for k, v in root_attrs.items():
            h5.attrs[k] = _attr(v)
        for arr in arrays:
            data = np.asarray(arr.data)
            name = safe_name(arr.name, "array")
            chunks = True if data.ndim and data.size > 1 else None
            ds = h5.create_dataset(name, data=data, compression="gzip" if chunks else None,
                                   compression_opts=4 if chunks else None, chunks=chunks)
            for k, v in arr.attrs.items():
                ds.attrs[str(k)] = _attr(v)
            for axis, info in arr.axes.items():
                ds.attrs[f"axis:{axis}"] = _attr(info)
    return path


def write_outputs(result: TranslationResult, vocab: dict[str, Any], raw_files: Sequence[Path],
                  out_dir: Path, *, translator: str, version: str,
                  known_sha256: dict[str, str] | None = None, error: str | None = None) -> dict[str, Any]:
    """Write meta/, tasksupport/, structured/, main_image/, thumbnail/ and labedge/ under ``out_dir``.

    Returns the translation report (also written to labedge/translation_report.json).
    A failure to write one optional output (a preview, one table) becomes a warning; the
    metadata and the report are always written. ``error``: the parser stopped after its header
    (see ``translators.progress``); what it read is written and the status is ``partial``.
    """
    warnings = list(result.warnings)
    unparsed: list[dict[str, Any]] = []
    metadata, mapped, meta_warnings = build_metadata(result, vocab, unparsed)
    warnings += meta_warnings
    stem = safe_name(result.stem or (raw_files[0].stem if raw_files else "data"))
    files: list[Path] = []
    from translators.mapping import public_vocabulary
    files.append(write_json(out_dir / "tasksupport" / "metadata-def.json", public_vocabulary(vocab)))
    files.append(write_json(out_dir / "meta" / "metadata.json", metadata))
    files.append(write_json(out_dir / "labedge" / "original_metadata.json", result.original))
    used_tables: set[str] = set()
    for table in result.tables:
        name = unique_name(safe_name(table.name or stem), used_tables)
        try:
            files.append(write_csv(out_dir / "structured" / f"{name}.csv", table.columns, table.units))
        except (ValueError, TypeError) as exc:
            warnings.append(f"table {table.name!r} not written: {exc}")
    if result.arrays:
        try:
            root = {k: v["value"] for k, v in metadata["constant"].items()}
            root.update({f"{k}@unit": v["unit"] for k, v in metadata["constant"].items() if "unit" in v})
            files.append(write_h5(out_dir / "structured" / f"{stem}.h5", result.arrays, root))
        except (ValueError, TypeError, OSError) as exc:
            warnings.append(f"HDF5 arrays not written: {exc}")
    if result.preview is not None:
        from translators.thumbnail import PreviewError, render
        try:
            files += render(result.preview, out_dir / "main_image" / f"{stem}.png",
                            out_dir / "thumbnail" / f"{stem}.png")
        except (PreviewError, ValueError, TypeError) as exc:
            warnings.append(f"preview image not drawn: {exc}")
    used: set[str] = set(result.used_keys)
    for key in {m["key"] for m in mapped}:
        term = vocab.get(key, {})
        hints = term.get("labedge") or {}
        used.update(n for n in [term.get("originalName"), hints.get("unitFrom"), *hints.get("alt", [])] if n)
    unmapped = unmapped_keys(result.original, used)
    found = len(leaf_keys(result.original))
    kept = len(leaf_keys(json.loads((out_dir / "labedge" / "original_metadata.json").read_text(encoding="utf-8"))))
    report = {
        "format_version": REPORT_FORMAT,
        "status": "partial" if warnings or error else "ok",
        "translator": translator, "translator_version": version,
        "provenance": provenance(raw_files, translator, version, known_sha256),
        "error": error,
        # vendor keys: leaf keys of original_metadata.json (an array is one key);
        # found = read from the files, kept = written to original_metadata.json,
        # mapped = read by some vocabulary term, unmapped = found - mapped
        "counts": {"vendor_keys": found, "vendor_keys_found": found, "vendor_keys_kept": kept,
                   "vendor_keys_mapped": found - len(unmapped), "unmapped_vendor_keys": len(unmapped),
                   "mapped_terms": len(mapped), "mapped_constant": len(metadata["constant"]),
                   "variable_rows": len(metadata["variable"]), "unparsed_values": len(unparsed),
                   "tables": len(used_tables), "arrays": len(result.arrays)},
        "encodings": dict(result.encodings),
        "mapped": mapped,
        "unmapped_vendor_keys": unmapped,
        "unparsed_values": unparsed,
        "warnings": warnings,
    }
    report_path = out_dir / "labedge" / "translation_report.json"
    files.append(report_path)
    report["files"] = sorted(str(p.relative_to(out_dir)).replace("\\", "/") for p in files)
    write_json(report_path, report)
    return report


def failure_report(raw_files: Sequence[Path], *, status: str, error: str, translator: str | None = None,
                   version: str | None = None, known_sha256: dict[str, str] | None = None,
                   **extra: Any) -> dict[str, Any]:
    """The report written when nothing could be translated; the raw files still ship."""
    report = {"format_version": REPORT_FORMAT, "status": status, "translator": translator,
              "translator_version": version,
              "provenance": provenance(raw_files, translator, version, known_sha256),
              "error": error, "counts": {}, "mapped": [], "unmapped_vendor_keys": [], "warnings": [],
              "files": ["labedge/translation_report.json"]}
    report.update(extra)
    return report
