"""Bruker D8 XRD: ``.brml`` (DIFFRAC.SUITE zip of XML) and binary ``.raw`` (RAW1.01, RAW4.00)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from translators.bruker.raw import parse_raw
from translators.common import best_score, pick_target
from translators.contract import CorruptFile, Preview, Table, TranslationResult, load_vocabulary
from translators.mapping import map_sources
from translators.safeio import is_zip, open_zip, parse_xml, read_bytes, read_head, xml_to_dict, zip_member
from translators.writer import flatten

_RAWDATA = re.compile(r"^Experiment(\d+)/RawData(\d+)\.xml$")
_COLUMN_NAMES = {"TwoTheta": ("2theta", "deg"), "Theta": ("theta", "deg"), "MeasuredTime": ("measured_time", "s"),
                 "AbsorptionFactor": ("absorption_factor", None), "ScanCounter": ("intensity", "counts"),
                 "Chi": ("chi", "deg"), "Phi": ("phi", "deg")}


def _views(route: dict[str, Any]) -> list[tuple[int, str, str | None]]:
    """(start column, name, unit) for each RawDataView of a DataRoute."""
    out: list[tuple[int, str, str | None]] = []
    views = route.get("DataViews", {})
    items = [v for k, v in views.items() if k.startswith("RawDataView")] if isinstance(views, dict) else []
    if items and isinstance(items[0], list):
        items = items[0]
    for v in items:
        if not isinstance(v, dict):
            continue
        start = int(v.get("@Start", len(out)))
        if "@LogicName" in v:
            out.append((start, v["@LogicName"], v.get("@Unit") or None))
        elif "Varying" in v:
            fields: list[Any] = []
            for k, f in v["Varying"].items():
                if k.startswith("FieldDefinitions"):
                    fields += f if isinstance(f, list) else [f]
            for j, f in enumerate(fields):
                fname = f.get("@FieldName", f"field{j}") if isinstance(f, dict) else f"field{j}"
                out.append((start + j, fname, None))
        elif "Recording" in v:
            out.append((start, v["Recording"].get("@LogicName", "counts"), "counts"))
    return sorted(out)


def _score(p: Path) -> float:
    head = read_head(p, 8)
    if head.startswith((b"RAW1.01", b"RAW4.00")):
        return 1.0
    if head.startswith((b"RAW ", b"RAW2")) and p.suffix.lower() == ".raw":
        return 0.8
    return 0.95 if p.suffix.lower() == ".brml" and head.startswith(b"PK") else 0.0


class BrukerTranslator:
    name = "bruker"
    version = "1.0.0"
    description = "Bruker XRD: .brml (DIFFRAC.SUITE zip XML, multi-scan) and binary .raw (RAW1.01; RAW4.00 best effort)"

    def vocabulary(self) -> dict[str, Any]:
        return load_vocabulary(__file__)

    def sniff(self, paths: Sequence[Path]) -> float:
        return best_score(paths, _score)

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        target, warnings = pick_target(paths, self.sniff, "a Bruker .brml/.raw file", "a Bruker file")
        if is_zip(target):
            return self._brml(target, warnings)
        return self._raw(target, warnings)

    # ---- BRML ---------------------------------------------------------------------------

    def _brml(self, path: Path, warnings: list[str]) -> TranslationResult:
        original: dict[str, Any] = {}
        sources: list[dict[str, Any]] = []
        tables: list[Table] = []
        with open_zip(path) as zf:
            names = zf.namelist()
            common: dict[str, Any] = {}
            for extra in ("experimentCollection.xml", "Experiment0/DataContainer.xml"):
                if extra in names:
                    tree = xml_to_dict(parse_xml(zip_member(zf, extra, path.name), f"{path.name}:{extra}"))
                    original[extra] = tree
                    common.update(flatten(tree))
            raws = sorted(((int(m.group(1)), int(m.group(2)), n) for n in names if (m := _RAWDATA.match(n))))
            if not raws:
                raise CorruptFile(f"{path.name}: no Experiment*/RawData*.xml inside; not a Bruker .brml "
                                  f"(members: {', '.join(names[:8])})")
            for _, idx, member in raws:
                where = f"{path.name}:{member}"
                root = parse_xml(zip_member(zf, member, path.name), where)
                datums = [d.text or "" for d in root.iter() if d.tag.rsplit("}", 1)[-1] == "Datum"]
                tree = xml_to_dict(root)
                tree = tree if isinstance(tree, dict) else {}
                route = tree.get("DataRoutes", {}).get("DataRoute", {})
                if isinstance(route, list):  # several routes: the measured one comes first
                    route = route[0]
                if isinstance(route, dict):
                    route.pop("Datum", None)
                original[member] = tree
                sources.append({**common, **flatten(tree)})
                table = self._brml_table(path, idx, datums, route if isinstance(route, dict) else {}, warnings)
                if table is not None:
                    tables.append(table)
        return self._result(path, sources, tables, original, warnings)

    @staticmethod
    def _brml_table(path: Path, idx: int, datums: list[str], route: dict[str, Any],
                    warnings: list[str]) -> Table | None:
        if not datums:
            warnings.append(f"{path.name}: RawData{idx} has no <Datum> points")
            return None
        rows = [d.split(",") for d in datums]
        width = len(rows[0])
        good = [r for r in rows if len(r) == width]
        try:
            arr = np.asarray(good, dtype=float)
        except ValueError:
            raise CorruptFile(f"{path.name}: RawData{idx}.xml has non-numeric <Datum> values") from None
        if len(good) < len(rows):
            warnings.append(f"{path.name}: RawData{idx}: {len(rows) - len(good)} <Datum> rows had the wrong "
                            "number of fields and were skipped")
        cols: dict[str, Any] = {}
        units: dict[str, str | None] = {}
        for start, logic, unit in _views(route)[:width]:
            if start >= width:
                continue
            name, default_unit = _COLUMN_NAMES.get(logic, (re.sub(r"\W+", "_", logic).lower(), None))
            while name in cols:
                name += "_"
            cols[name] = arr[:, start]
            units[name] = default_unit if unit in (None, "°") else unit
        if not cols:
            cols = {f"column{j}": arr[:, j] for j in range(width)}
        return Table(name=f"{path.stem}_RawData{idx}", columns=cols, units=units)

    # ---- RAW ----------------------------------------------------------------------------

    def _raw(self, path: Path, warnings: list[str]) -> TranslationResult:
        meta, ranges, w = parse_raw(read_bytes(path), path.name)
        warnings += w
        original: dict[str, Any] = {"header": meta, "ranges": [rg.meta for rg in ranges]}
        sources = [{**meta, **rg.meta} for rg in ranges] or [dict(meta)]
        tables = []
        for i, rg in enumerate(ranges, 1):
            if rg.counts is None or rg.counts.size == 0:
                continue
            x = rg.start + rg.step * np.arange(rg.counts.size)
            tables.append(Table(name=path.stem if len(ranges) == 1 else f"{path.stem}_range{i}",
                                columns={"2theta": x, "intensity": rg.counts},
                                units={"2theta": "deg", "intensity": "counts"}))
        return self._result(path, sources, tables, original, warnings)

    # ---- common -------------------------------------------------------------------------

    def _result(self, path: Path, sources: list[dict[str, Any]], tables: list[Table],
                original: dict[str, Any], warnings: list[str]) -> TranslationResult:
        constant, variable, w = map_sources(sources, self.vocabulary())
        warnings += w
        preview = None
        plot = [t for t in tables if "2theta" in t.columns and "intensity" in t.columns]
        if plot:
            preview = Preview(x=[t.columns["2theta"] for t in plot], y=[t.columns["intensity"] for t in plot],
                              x_label="2theta (deg)", y_label="counts", title=path.name)
        else:
            warnings.append(f"{path.name}: no 2theta/intensity data to plot")
        return TranslationResult(constant=constant, variable=variable, original=original, tables=tables,
                                 preview=preview, warnings=warnings, stem=path.stem)
