"""Athena/Demeter project files (.prj): gzipped Perl data, one record per data group.

Each group is ``@args`` (key/value list of processing parameters), ``@x``/``@y`` arrays
(energy and mu, or k and chi, depending on ``recordtype``), optional ``@i0``/``@signal``,
ended by a ``[record]`` marker. Parsed with a literal-only tokenizer, never evaluated.
"""
from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators.common import best_score, num, put, require_file, text
from translators.contract import CorruptFile, Preview, Table, TranslationResult, load_vocabulary
from translators.xafs.common import head
from translators.xafs.perl_literal import parse_statements

MAX_UNPACKED = 256 * 1024 * 1024  # bound on the decompressed project (zip-bomb guard)
_HEADER = b"# Athena project file"
_ARRAYS = {"@x": "x", "@y": "y", "@i0": "i0", "@signal": "signal", "@stddev": "stddev"}
_UNITS = {"mu(E)": ("energy", "eV", "mu(E)"), "xmu": ("energy", "eV", "mu(E)"),
          "xanes": ("energy", "eV", "mu(E)"), "norm(E)": ("energy", "eV", "norm(E)"),
          "chi(k)": ("k", "1/Angstrom", "chi(k)"), "chi": ("k", "1/Angstrom", "chi(k)")}
_GROUP_NUM = {"e0": "bkg_e0", "edge_step": "bkg_step", "rbkg": "bkg_rbkg", "bkg_kweight": "bkg_kw",
              "pre_edge_start": "bkg_pre1", "pre_edge_end": "bkg_pre2", "norm_start": "bkg_nor1",
              "norm_end": "bkg_nor2", "spline_kmin": "bkg_spl1", "spline_kmax": "bkg_spl2",
              "fft_kmin": "fft_kmin", "fft_kmax": "fft_kmax"}


def _unpack(p: Path) -> bytes:
    """Read the (usually gzipped) project, refusing more than MAX_UNPACKED bytes."""
    raw = p.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        if len(raw) > MAX_UNPACKED:
            raise CorruptFile(f"{p.name}: larger than {MAX_UNPACKED} bytes")
        return raw
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(raw, MAX_UNPACKED + 1)
    except zlib.error as e:
        raise CorruptFile(f"{p.name}: damaged gzip data ({e})") from None
    if len(out) > MAX_UNPACKED:
        raise CorruptFile(f"{p.name}: decompresses to more than {MAX_UNPACKED} bytes")
    if not d.eof:
        raise CorruptFile(f"{p.name}: gzip stream is truncated")
    return out


def _head_unpacked(p: Path) -> bytes:
    h = head(p, 4096)
    if h[:2] == b"\x1f\x8b":
        try:
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(h, 256)
        except zlib.error:
            return b""
    return h


def _is_prj(p: Path) -> bool:
    h = _head_unpacked(p).lstrip(b"\xef\xbb\xbf\r\n\t ")
    # Perl-data projects start with the header; JSON projects (Demeter >= 0.9.26) carry it
    # as a "_____header1" value
    return h.startswith(_HEADER) or (h.startswith(b"{") and b'"# Athena project file' in h)


def _json_groups(src: str, name: str) -> tuple[list[str], list[dict[str, Any]], dict[str, Any]]:
    """Header lines, groups (args/x/y/i0/signal) and other keys of a JSON Athena project."""
    import json

    try:
        doc, end = json.JSONDecoder().raw_decode(src.lstrip("\ufeff \r\n\t"))
    except ValueError as exc:
        raise CorruptFile(f"{name}: not valid JSON ({exc}); truncated or damaged?") from None
    rest = src.lstrip("\ufeff \r\n\t")[end:]
    if rest.strip():
        from translators.progress import warn

        warn(f"{name}: {len(rest)} characters after the JSON document were ignored (trailing bytes)")
    if not isinstance(doc, dict):
        raise CorruptFile(f"{name}: a JSON Athena project must be an object")
    header = [str(v).lstrip("#").strip() for k, v in doc.items() if k.startswith("_____header")]
    order = doc.get("_____order")
    keys = [k for k in (order if isinstance(order, list) else doc) if isinstance(doc.get(k), dict)]
    groups = []
    for k in keys:
        g = doc[k]
        if not isinstance(g.get("args"), dict):
            continue
        one: dict[str, Any] = {"args": g["args"]}
        for src_key in ("x", "y", "i0", "signal", "stddev"):
            if isinstance(g.get(src_key), list):
                one[src_key] = g[src_key]
        groups.append(one)
    other = {k: v for k, v in doc.items() if k.startswith("_____") and not isinstance(v, (dict, list))}
    return header, groups, other


class AthenaTranslator:
    name = "xafs-athena"
    version = "1.0.0"
    description = "Athena/Demeter XAFS project files (.prj), parsed without evaluating Perl"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        return best_score(paths, lambda p: 0.97 if _is_prj(p) else 0.0)

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        path = require_file(paths, _is_prj, "no Athena project "
                            "(expected '# Athena project file' header, gzipped or plain)")
        raw = _unpack(path)
        src = raw.decode("latin-1")
        if raw.lstrip(b"\xef\xbb\xbf\r\n\t ").startswith(b"{"):
            header, groups, extra = _json_groups(raw.decode("utf-8", "replace"), path.name)
            fmt = "Athena project (JSON)"
        else:
            header, groups, extra = _perl_groups(src, path.name)
            fmt = "Athena project"
        if not groups:
            raise CorruptFile(f"{path.name}: no data groups ([record]) found")
        res = TranslationResult()
        c: dict[str, Any] = {"file_format": fmt}
        m = re.search(r"Demeter version\s+(\S+)", " ".join(header))
        put(c, "software", f"Demeter {m[1]}" if m else None)
        put(c, "number_of_groups", len(groups))
        orig_groups = []
        for gi, g in enumerate(groups, start=1):
            args = g.get("args", {})
            v: dict[str, Any] = {}
            put(v, "group_label", text(args.get("label")))
            put(v, "record_type", text(args.get("recordtype")))
            put(v, "group_element", text(args.get("bkg_z")))
            put(v, "group_edge", text(args.get("fft_edge")).upper() if text(args.get("fft_edge")) else None)
            for key, a in _GROUP_NUM.items():
                put(v, key, num(args.get(a)))
            put(v, "fft_window", text(args.get("fft_kwindow")))
            # Demeter writes '@&^^null^^&@' for "no value"
            src_file = text(next((a for a in (args.get("file"), args.get("source"))
                                  if a and str(a) != "@&^^null^^&@"), None))
            # Only the base name: paths inside data are never opened or trusted.
            put(v, "group_source_file", src_file.replace("\\", "/").rsplit("/", 1)[-1] if src_file else None)
            table = _table(path, gi, g, args)
            if table is not None:
                res.tables.append(table)
                put(v, "group_points", len(next(iter(table.columns.values()))))
            res.variable.append(v)
            orig_groups.append({"args": args, "arrays": sorted(k for k in g if k != "args")})
        els = {v.get("group_element") for v in res.variable if v.get("group_element")}
        if len(els) == 1:
            put(c, "element", els.pop())
        res.constant = c
        res.original = {"header": header, "groups": orig_groups,
                        "other": {k: v for k, v in extra.items() if not isinstance(v, list) or len(v) < 50}}
        if res.tables:
            t = res.tables[0]
            (xn, x), (yn, y) = list(t.columns.items())[:2]
            res.preview = Preview(x=x, y=y, x_label=f"{xn} ({t.units.get(xn) or ''})".replace(" ()", ""),
                                  y_label=yn, title=text(groups[0].get("args", {}).get("label")) or "")
        return res


def _perl_groups(src: str, name: str) -> tuple[list[str], list[dict[str, Any]], dict[str, Any]]:
    header = [ln.lstrip("#").strip() for ln in src.splitlines()[:5] if ln.startswith("#")]
    groups: list[dict[str, Any]] = []
    cur: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for target, value, line in parse_statements(src, name):
        if target == "@args":
            if not isinstance(value, list):
                raise CorruptFile(f"{name}: line {line}: @args is not a list")
            cur["args"] = {str(value[k]): value[k + 1] if k + 1 < len(value) else None
                           for k in range(0, len(value), 2)}
        elif target in _ARRAYS:
            cur[_ARRAYS[target]] = value
        elif target == "[record]":
            if cur:
                groups.append(cur)
            cur = {}
        else:
            extra[target] = value
    if cur.get("args"):
        groups.append(cur)  # a last group without its [record] marker
    return header, groups, extra


def _table(path: Path, gi: int, g: dict[str, Any], args: dict[str, Any]) -> Table | None:
    x, y = g.get("x"), g.get("y")
    if not isinstance(x, list) or not isinstance(y, list) or not x:
        return None
    try:
        xa = np.asarray([float(s) for s in x])
        ya = np.asarray([float(s) for s in y])
    except (TypeError, ValueError):
        raise CorruptFile(f"{path.name}: group {gi}: @x/@y hold non-numeric values") from None
    if len(xa) != len(ya):
        raise CorruptFile(f"{path.name}: group {gi}: @x has {len(xa)} values but @y has {len(ya)}")
    xn, xu, yn = _UNITS.get(str(args.get("recordtype")), ("x", None, "y"))
    cols: dict[str, Any] = {xn: xa, yn: ya}
    units: dict[str, str | None] = {xn: xu, yn: None}
    i0 = g.get("i0")
    if isinstance(i0, list) and len(i0) == len(xa):
        try:
            cols["i0"], units["i0"] = np.asarray([float(s) for s in i0]), None
        except (TypeError, ValueError):
            pass
    label = re.sub(r"[^A-Za-z0-9]+", "_", str(args.get("label") or "")).strip("_")[:40]
    return Table(name=f"group{gi:02d}" + (f"_{label}" if label else ""), columns=cols, units=units)
