"""The repository as committed: no merge left half-done. Many engineers merge into main in parallel, and a
conflict marker in `.ci/run` or the README once landed in a merge commit."""
from __future__ import annotations

import re
import subprocess

from testpaths import REPO

MARKER = re.compile(rb"^(<<<<<<< |>>>>>>> |=======$)", re.MULTILINE)


def test_no_conflict_markers_in_tracked_files():
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.split(b"\0")
    bad = []
    for name in filter(None, files):
        path = REPO / name.decode("utf-8", "surrogateescape")
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        data = path.read_bytes()
        if b"\0" in data[:4096]:
            continue  # binary
        for m in MARKER.finditer(data):
            line = data.count(b"\n", 0, m.start()) + 1
            bad.append(f"{name.decode(errors='replace')}:{line}")
    assert not bad, "merge conflict markers committed: " + ", ".join(bad)
