"""Generic text translator: key-value header + numeric columns, configured by a mapping file.

For the many in-house instruments (e.g. superconductor I-V stations) whose files are a heavy
"key: value" header followed by columns of numbers. Which header keys become which
vocabulary terms, the units, and the column names are data (``mappings/*.toml``), not code.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators.contract import CorruptFile, Preview, Table, TranslationResult, UnsupportedFile, load_vocabulary
from translators.generic_text.config import TextMapping, load_mappings
from translators.mapping import apply_vocabulary
from translators.safeio import read_bytes, read_head

_UNIT_IN_NAME = re.compile(r"^(.*?)\s*[\[(]([^\])]*)[\])]\s*$")
_SNAKE = re.compile(r"[^a-z0-9]+")


def _split_row(line: str, delimiter: str) -> list[str]:
    if delimiter == "auto":
        for d in ("\t", ",", ";"):
            if d in line:
                return [p.strip() for p in line.split(d)]
        return line.split()
    return [p.strip() for p in line.split(delimiter)]


def _numeric(parts: list[str]) -> list[float] | None:
    try:
        return [float(p) for p in parts if p != ""]
    except ValueError:
        return None


def _decode(data: bytes, encodings: list[str], where: str = "") -> str:
    """The mapping's encodings in order, or (none given) BOM / UTF-8 / legacy code page detection."""
    from translators.safeio import decode_text, without_trailing_junk

    try:
        text = decode_text(data, tuple(encodings) or None, where=where)[0].lstrip("\ufeff")
    except LookupError:  # a mapping naming an unknown codec
        text = decode_text(data, where=where)[0].lstrip("\ufeff")
    return without_trailing_junk(text, where) if where else text


class GenericTextTranslator:
    name = "generic-text"
    version = "1.0.0"
    description = "Key-value header + numeric columns text files, mapped by TOML/JSON mapping files"

    def vocabulary(self) -> dict[str, Any]:
        vocab = load_vocabulary(__file__)
        for m in load_mappings()[0]:
            vocab.update(m.vocabulary())
        return vocab

    def _header_keys(self, text: str, m: TextMapping) -> dict[str, str]:
        out: dict[str, str] = {}
        for line in text.splitlines():
            s = line.strip()
            for pfx in m.comment_prefixes:
                if s.startswith(pfx):
                    s = s[len(pfx):].strip()
            for sep in m.separators:
                if sep in s:
                    k, v = s.split(sep, 1)
                    if k.strip() and not _numeric([k.strip()]):
                        out.setdefault(k.strip(), v.strip())
                    break
        return out

    def _matches(self, path: Path, head: bytes, m: TextMapping) -> bool:
        if m.suffixes and path.suffix.lower() not in m.suffixes:
            return False
        text = _decode(head, m.encodings)
        if any(h not in text for h in m.header_contains):
            return False
        keys = {k.lower() for k in self._header_keys(text, m)}
        return all(k in keys for k in m.required_keys)

    def _choose(self, paths: Sequence[Path]) -> tuple[Path, TextMapping] | None:
        mappings, _ = load_mappings()
        for p in paths:
            head = read_head(p, 8192)
            if not head or b"\0" in head:
                continue
            for m in mappings:
                if self._matches(p, head, m):
                    return p, m
        return None

    def sniff(self, paths: Sequence[Path]) -> float:
        try:
            return 0.6 if self._choose(paths) else 0.0  # below vendor translators: they know better
        except Exception:  # noqa: BLE001 - sniff never raises (a bad site mapping must not break detection)
            return 0.0

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        if any(p.is_file() and p.stat().st_size == 0 for p in paths):
            empty = next(p for p in paths if p.is_file() and p.stat().st_size == 0)
            raise CorruptFile(f"{empty.name}: the file is empty")
        chosen = self._choose(paths)
        if chosen is None:
            _, errors = load_mappings()
            hint = f" (mapping errors: {'; '.join(errors)})" if errors else ""
            raise UnsupportedFile("no generic-text mapping matches " + ", ".join(p.name for p in paths) + hint)
        path, m = chosen
        text = _decode(read_bytes(path), m.encodings, path.name)
        lines = text.splitlines()
        start = self._data_start(lines, m)
        stop = len(lines)
        if m.data_after:
            marker = next((i for i, ln in enumerate(lines) if ln.strip() == m.data_after), None)
            if marker is None:
                self._keep_header(lines, m)
                raise CorruptFile(f"{path.name}: no {m.data_after!r} line, where the mapping {m.name!r} "
                                  "expects the data block")
            sub = self._data_start(lines[marker + 1:], m)
            start = None if sub is None else marker + 1 + sub
        if start is not None and m.data_stop:
            stop = next((i for i in range(start, len(lines)) if lines[i].strip().startswith(m.data_stop)), len(lines))
        if start is None:
            self._keep_header(lines, m)
            raise CorruptFile(f"{path.name}: header found but no rows of at least {m.min_columns} numbers follow; "
                              "truncated or not a data file")
        header_lines = lines[:start]
        header = self._header_keys("\n".join(header_lines), m)
        warnings: list[str] = []
        names_line = header_lines[-1] if header_lines and m.column_names == "line" else ""
        rows, bad = [], 0
        width = len(_numeric(_split_row(lines[start].strip(), m.delimiter)) or [])
        for ln in lines[start:stop]:
            if not ln.strip():
                continue
            vals = _numeric(_split_row(ln.strip(), m.delimiter))
            if vals is None or len(vals) != width:
                bad += 1
                continue
            rows.append(vals)
        if bad:
            warnings.append(f"{path.name}: {bad} line(s) after the data start were not rows of {width} numbers; "
                            "skipped (truncated or damaged?)")
        arr = np.asarray(rows, dtype=float)
        columns, units = self._columns(names_line, width, m, arr, warnings)
        source = {**header, "labedge:mapping": m.name, "labedge:data_rows": len(rows)}
        vocab = {**load_vocabulary(__file__), **m.vocabulary()}
        constant, w = apply_vocabulary(source, vocab)
        warnings += w
        mapped_orig = {t["original"] for t in m.terms}
        unknown = [k for k in header if k not in mapped_orig]
        original = {"mapping": {"name": m.name, "version": m.version, "source": m.source},
                    "header": header, "column_names_line": names_line.strip()}
        x_name = m.plot.get("x") if m.plot.get("x") in columns else next(iter(columns))
        y_name = m.plot.get("y") if m.plot.get("y") in columns else list(columns)[min(1, len(columns) - 1)]
        preview = Preview(x=columns[x_name], y=columns[y_name], title=path.name,
                          x_label=f"{x_name} ({units.get(x_name) or '-'})", y_label=y_name)
        if unknown:
            original["unmapped_header_keys"] = len(unknown)
        return TranslationResult(constant=constant, original=original,
                                 tables=[Table(path.stem, columns, units)], preview=preview,
                                 warnings=warnings, vocabulary=vocab, stem=path.stem)

    def _keep_header(self, lines: list[str], m: TextMapping) -> None:
        """The data block is missing: the header is still translated (partial, see translators.progress)."""
        from translators import progress

        header = self._header_keys("\n".join(lines), m)
        vocab = {**load_vocabulary(__file__), **m.vocabulary()}
        constant, _ = apply_vocabulary({**header, "labedge:mapping": m.name}, vocab)
        progress.header_read({"mapping": {"name": m.name, "version": m.version}, "header": header}, constant, vocab)

    @staticmethod
    def _data_start(lines: list[str], m: TextMapping) -> int | None:
        """First line that begins a run of numeric rows (3 in a row, or up to the end of the file)."""
        for i, ln in enumerate(lines):
            vals = _numeric(_split_row(ln.strip(), m.delimiter)) if ln.strip() else None
            if not vals or len(vals) < m.min_columns:
                continue
            run = [x for x in lines[i:i + 3] if x.strip()]
            if all((v := _numeric(_split_row(x.strip(), m.delimiter))) and len(v) == len(vals) for x in run):
                return i
        return None

    @staticmethod
    def _columns(names_line: str, width: int, m: TextMapping, arr: np.ndarray,
                 warnings: list[str]) -> tuple[dict[str, Any], dict[str, str | None]]:
        names = _split_row(names_line.strip().lstrip("#;% ").strip(), m.delimiter) if names_line else []
        if m.column_names == "numbered":
            names = [f"x{i + 1}" for i in range(width)]
        elif len(names) != width:
            warnings.append(f"column-name line has {len(names)} names for {width} columns; columns are numbered")
            names = [f"column{i + 1}" for i in range(width)]
        columns: dict[str, Any] = {}
        units: dict[str, str | None] = {}
        for i, raw in enumerate(names):
            base, unit = raw, None
            mu = _UNIT_IN_NAME.match(raw)
            if mu:
                base, unit = mu.group(1), mu.group(2).strip() or None
            name, munit = m.columns.get(base.strip().lower(), (None, None))
            if name is None:
                name = _SNAKE.sub("_", base.lower()).strip("_") or f"column{i + 1}"
            if munit and unit and munit != unit:
                warnings.append(f"column {raw!r}: the file says unit {unit!r}, the mapping {munit!r}; "
                                "the file's unit is kept")
            while name in columns:
                name += "_"
            columns[name] = arr[:, i] if arr.size else np.empty(0)
            units[name] = unit or munit
        return columns, units
