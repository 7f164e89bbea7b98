"""Cost of the official-template output (issue 14 §3): per shared sample the official programs
ran on, translate + write in-process (the reference, same run) against applying the profile to the
written package, and against `rde-export` of it (copy, profile, zip, invoice check). Median of 3.

usage: .venv/bin/python bench/bench_rde_profiles.py
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_time  # noqa: E402
from facility.rde_export import export_one  # noqa: E402
from translators import profiles, progress  # noqa: E402
from translators.registry import load_registry  # noqa: E402
from translators.writer import write_outputs  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
TEMPLATES = SHARED / "rde-official" / "templates"
PROFILE_OF = {"RDE_XRD": "nims-xrd-rigaku", "RDE_XPS_scienta_omicron": "nims-xps-vamas", "RDE_AES_survey": "nims-aes-survey",
              "RDE_EM_TemDm3_EELS": "nims-temdm3", "RDE_EM_TemDm3_TED": "nims-temdm3", "RDE_EM_Em": "nims-em"}


def main() -> None:
    reg = load_registry()
    print("| template | sample | translate+write ms | profile ms | rde-export ms | profile / translate |")
    print("|---|---|---|---|---|---|")
    for official in sorted((SHARED / "rde-official" / "outputs").glob("*/*.metadata.json")):
        family, name = official.name.removesuffix(".metadata.json").split("__", 1)
        sample = SHARED / "samples" / family / name
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "pkg" / "data"
            (data / "raw").mkdir(parents=True)
            members = sorted(sample.iterdir()) if sample.is_dir() else [sample]
            raws = [data / "raw" / m.name for m in members]
            for m, r in zip(members, raws):
                shutil.copy2(m, r)
            tr, _ = reg.choose(raws)

            def translate() -> None:
                out = Path(tmp) / "t"
                shutil.rmtree(out, ignore_errors=True)
                result, err = progress.translate(tr, raws)
                write_outputs(result, result.vocabulary or tr.vocabulary(), raws, out, translator=tr.name,
                              version=tr.version, error=err)

            t_translate = median_time(translate, 3)
            for d in ("labedge", "meta", "tasksupport", "main_image", "structured", "thumbnail"):
                if (Path(tmp) / "t" / d).is_dir():
                    shutil.copytree(Path(tmp) / "t" / d, data / d)
            (data / "invoice").mkdir()
            (data / "invoice" / "invoice.json").write_text(json.dumps({"custom": {}, "sample": {"names": ["x"]}}))
            base = Path(tmp) / "base"
            shutil.copytree(data, base)

            def profile() -> None:
                work = Path(tmp) / "w"
                shutil.rmtree(work, ignore_errors=True)
                shutil.copytree(base, work)
                profiles.apply_profile(work, PROFILE_OF[official.parent.name], TEMPLATES)

            t_copy = median_time(lambda: (shutil.rmtree(Path(tmp) / "c", ignore_errors=True), shutil.copytree(base, Path(tmp) / "c")), 3)
            t_profile = max(median_time(profile, 3) - t_copy, 0.0)
            t_export = median_time(lambda: export_one(data.parent, PROFILE_OF[official.parent.name], TEMPLATES, Path(tmp) / "x"), 3)
        print(f"| {official.parent.name} | {name} | {t_translate * 1e3:.1f} | {t_profile * 1e3:.1f} | "
              f"{t_export * 1e3:.1f} | {t_profile / t_translate:.2f} |")


if __name__ == "__main__":
    main()
