"""Baseline for issue 14 §3 (not implemented yet): how far labedge's default output is from the
official NIMS RDE templates, per template and sample of ../shared/rde-official/outputs.

For every key the official program wrote, "covered" = labedge mapped a term from the same vendor
key (the official metadata-def's originalName, compared without '*' and case), "equal" = and the
value is the same (numbers to 1e-6 relative; text stripped), "value elsewhere" = the official value
occurs among labedge's mapped values under some other key. Nothing is copied from the templates.

usage: .venv/bin/python bench/bench_rde_official.py [--markdown]
"""
from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from translators import progress  # noqa: E402
from translators.registry import load_registry  # noqa: E402
from translators.writer import write_outputs  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
OFFICIAL = SHARED / "rde-official"
DEFS = {  # output folder -> the official metadata-def it ran with (see ../shared/rde-official/README.md)
    "RDE_XRD": {".ras": "templates/RDE_XRD/template/rigaku/tasksupport/metadata-def_rigaku_ras.json",
                ".rasx": "templates/RDE_XRD/template/rigaku/tasksupport/metadata-def_rigaku_rasx.json"},
    "RDE_XPS_scienta_omicron": {"": "templates/RDE_XPS/template/scienta_omicron/tasksupport/metadata-def.json"},
    "RDE_AES_survey": {"": "templates/RDE_AES/templates/AES-survey/tasksupport/metadata-def.json"},
    "RDE_EM_TemDm3_EELS": {"": "templates/RDE_ELECTRON_MICROSCOPE_STANDARD/templates/template_TemDm3/tasksupport/metadata-def_EELS.json"},
    "RDE_EM_TemDm3_TED": {"": "templates/RDE_ELECTRON_MICROSCOPE_STANDARD/templates/template_TemDm3/tasksupport/metadata-def_TED.json"},
    "RDE_EM_Em": {".tif": "templates/RDE_ELECTRON_MICROSCOPE_STANDARD/templates/template_Em/tasksupport/metadata-def_Tiff.json",
                  "": "templates/RDE_ELECTRON_MICROSCOPE_STANDARD/templates/template_Em/tasksupport/metadata-def_DigitalMicrograph.json"},
}


def _norm(name: str | None) -> str:
    return (name or "").replace("*", "").strip().lower().rsplit("/", 1)[-1]


def _same(a, b) -> bool:
    try:
        fa, fb = float(a), float(b)
        return math.isclose(fa, fb, rel_tol=1e-6, abs_tol=1e-9)
    except (TypeError, ValueError):
        return str(a).strip() == str(b).strip()


def compare(folder: str, out_file: Path) -> dict:
    sample_rel = out_file.name.replace(".metadata.json", "").replace("__", "/", 1)
    sample = SHARED / "samples" / sample_rel
    paths = sorted(sample.iterdir()) if sample.is_dir() else [sample]
    defs = DEFS[folder]
    def_path = OFFICIAL / next((v for k, v in defs.items() if k and sample.suffix.lower() == k), defs.get("", ""))
    official_def = json.loads(def_path.read_text(encoding="utf-8"))
    official = json.loads(out_file.read_text(encoding="utf-8"))
    values = [(k, e.get("value")) for k, e in official.get("constant", {}).items()]
    for row in official.get("variable", [])[:1]:
        values += [(k, e.get("value")) for k, e in row.items()]
    reg = load_registry()
    t, _ = reg.choose(paths)
    result, error = progress.translate(t, paths)
    with tempfile.TemporaryDirectory() as d:
        rep = write_outputs(result, result.vocabulary or t.vocabulary(), paths, Path(d), translator=t.name,
                            version=t.version, error=error)
    ours = {}
    for m in rep["mapped"]:
        for alt in str(m.get("originalName") or "").split(" / "):
            ours.setdefault(_norm(alt), m["value"])
    all_values = [m["value"] for m in rep["mapped"]]
    covered = equal = elsewhere = 0
    for key, v in values:
        orig = _norm((official_def.get(key) or {}).get("originalName"))
        if orig and orig in ours:
            covered += 1
            equal += _same(ours[orig], v)
        elif any(_same(x, v) for x in all_values if v not in (None, "")):
            elsewhere += 1
    from translators.rde_template import apply_template

    tmeta, _ = apply_template(json.loads(json.dumps(result.original, default=str)), official_def)
    tvals = dict((k, e.get("value")) for k, e in tmeta["constant"].items())
    for row in tmeta["variable"][:1]:
        tvals.update((k, e.get("value")) for k, e in row.items())
    in_template = sum(1 for k, v in values if k in tvals and _same(tvals[k], v))
    return {"template": folder, "sample": sample_rel, "translator": t.name, "official_keys": len(values),
            "template_equal": in_template,
            "covered": covered, "equal": equal, "elsewhere": elsewhere,
            "same_names": sum(1 for k, _ in values if k in {m["key"] for m in rep["mapped"]})}


def main() -> None:
    rows = [compare(f.name, o) for f in sorted((OFFICIAL / "outputs").iterdir()) for o in sorted(f.glob("*.json"))]
    md = "--markdown" in sys.argv
    if md:
        print("| template | sample | translator | official keys | same key name | covered (same vendor key) | equal | value under another key | equal with --rde-template |")
        print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [r["template"], r["sample"], r["translator"], r["official_keys"], r["same_names"], r["covered"],
                 r["equal"], r["elsewhere"], r["template_equal"]]
        print(("| " + " | ".join(map(str, cells)) + " |") if md else "  ".join(map(str, cells)))


if __name__ == "__main__":
    main()
