"""The two sides stay apart: the facility and the wire code import nothing of the device's internals.

`facility/` and `wire/` may use the package format (`agent.package`, which the receiver needs to verify
what arrives) and `config` (schemas and their error messages), never the agent's watcher, state,
uploader or sheets. A newcomer reading `agent/` sees only the device.
"""
from __future__ import annotations

import ast
from pathlib import Path

from testpaths import REPO

ALLOWED_FROM_AGENT = ("agent.package",)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def test_facility_and_wire_import_no_device_internals():
    bad = []
    for side in ("facility", "wire"):
        files = sorted((REPO / side).rglob("*.py"))
        assert files, f"{side}/ has no modules"
        for f in files:
            for line, mod in _imports(f):
                if (mod == "agent" or mod.startswith("agent.")) and not mod.startswith(ALLOWED_FROM_AGENT):
                    bad.append(f"{f.relative_to(REPO)}:{line} imports {mod}")
    assert not bad, "facility/wire reach into the device's internals:\n" + "\n".join(bad)


def test_wire_does_not_import_either_side():
    for f in sorted((REPO / "wire").rglob("*.py")):
        for line, mod in _imports(f):
            assert not mod.startswith("facility"), f"{f.relative_to(REPO)}:{line} imports {mod}"
