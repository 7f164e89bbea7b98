"""Check a package: BagIt validity (the reference ``bagit`` library) plus our layout rules."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import bagit

REQUIRED = ("data/invoice/invoice.json", "data/tasksupport/invoice.schema.json", "data/labedge/provenance.json")


@dataclass
class VerifyResult:
    ok: bool
    problems: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0


def verify_package(path: Path) -> VerifyResult:
    path = Path(path)
    if not (path / "bagit.txt").is_file():
        return VerifyResult(False, [f"{path}: not a package (no bagit.txt)"])
    problems: list[str] = []
    try:
        bag = bagit.Bag(str(path))
        bag.validate(processes=1)
    except bagit.BagValidationError as exc:
        details = [str(d) for d in getattr(exc, "details", [])] or [str(exc)]
        problems.extend(f"{path}: {d}" for d in details)
    except bagit.BagError as exc:
        problems.append(f"{path}: {exc}")
    for rel in REQUIRED:
        if not (path / rel).is_file():
            problems.append(f"{path}: missing {rel}")
    prov = path / "data/labedge/provenance.json"
    if prov.is_file():
        try:
            p = json.loads(prov.read_text(encoding="utf-8"))
            for s in p.get("sources", []):
                if not (path / "data" / s["raw"]).is_file():
                    problems.append(f"{path}: provenance names data/{s['raw']} but it is missing")
        except (ValueError, KeyError) as exc:
            problems.append(f"{path}: provenance.json unreadable: {exc}")
    files = [f for f in (path / "data").rglob("*") if f.is_file()] if (path / "data").is_dir() else []
    return VerifyResult(not problems, problems, len(files), sum(f.stat().st_size for f in files))
