"""Translator round 2: rates and time per file over ../shared/samples and ../shared/samples-variants.

For every file (one measurement each, as the agent packages them by default): the chosen
translator, its status, vendor keys found / mapped, mapped terms, the in-process translate +
write time (median of 3) against reading + sha256 of the same bytes in the same run, and
whether rdetoolkit accepts the output (../shared/tools/rde-validate).

usage: .venv/bin/python bench/bench_round2.py [--no-validate] [--markdown]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _timing import median_time, read_and_hash  # noqa: E402
from translators import progress  # noqa: E402
from translators.registry import load_registry  # noqa: E402
from translators.writer import write_outputs  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
VALIDATE = SHARED / "tools" / "rde-validate"


def one(reg, path: Path, out: Path, validate: bool) -> dict:
    t, _ = reg.choose([path])
    row = {"file": f"{path.parent.name}/{path.name}", "kib": path.stat().st_size / 1024,
           "translator": t.name if t else "-", "status": "untranslated", "valid": None}
    ref = read_and_hash([path])
    row["ref_ms"] = ref * 1e3
    if t is None:
        return row

    def run() -> dict:
        try:
            result, error = progress.translate(t, [path])
        except Exception as exc:  # noqa: BLE001 - a clear failure is a status, not a crash
            return {"status": "failed", "error": str(exc)[:80]}
        return write_outputs(result, result.vocabulary or t.vocabulary(), [path], out, translator=t.name,
                             version=t.version, error=error)
    rep = run()
    row["ms"] = median_time(run, 3) * 1e3
    row["status"] = rep["status"]
    if "counts" in rep:
        c = rep["counts"]
        row.update(keys=c["vendor_keys_found"], mapped_keys=c["vendor_keys_mapped"], terms=c["mapped_terms"])
        if validate and VALIDATE.exists():
            row["valid"] = subprocess.run([str(VALIDATE), str(out)], capture_output=True).returncode == 0
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-validate", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    reg = load_registry()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for k, sub in enumerate(("samples", "samples-variants")):
            files = sorted(p for p in (SHARED / sub).rglob("*") if p.is_file() and p.name != "SOURCES.md")
            for i, p in enumerate(files):
                r = one(reg, p, Path(d) / f"{k}_{i}", not args.no_validate)
                r["set"] = sub
                rows.append(r)
    if args.markdown:
        print("| set | file | KiB | translator | status | vendor keys (mapped) | terms | ms | x read+sha256 | rde-valid |")
        print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = r["ms"] / r["ref_ms"] if r.get("ms") else 0
        cells = [r["set"], r["file"], f"{r['kib']:.0f}", r["translator"], r["status"],
                 f"{r.get('keys', '-')} ({r.get('mapped_keys', '-')})", str(r.get("terms", "-")),
                 f"{r.get('ms', 0):.1f}", f"{ratio:.0f}", {True: "yes", False: "NO", None: "-"}[r["valid"]]]
        print("| " + " | ".join(cells) + " |" if args.markdown else "  ".join(cells))
    for sub in ("samples", "samples-variants"):
        rs = [r for r in rows if r["set"] == sub]
        tr = [r for r in rs if r["status"] in ("ok", "partial")]
        ok = [r for r in rs if r["status"] == "ok"]
        val = [r for r in tr if r["valid"]]
        ms = sorted(r["ms"] for r in tr)
        print(f"\n{sub}: {len(rs)} files, translated {len(tr)} ({100 * len(tr) / len(rs):.0f} %), ok {len(ok)}, "
              f"partial {len(tr) - len(ok)}, rde-valid {len(val)} of {len(tr)}; translate+write median "
              f"{ms[len(ms) // 2]:.0f} ms, max {ms[-1]:.0f} ms")


if __name__ == "__main__":
    main()
