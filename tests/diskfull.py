"""A real full disk for the tests: a small tmpfs (root only) filled with ballast."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path


def mount_tmpfs(where: Path, size: str) -> bool:
    """Mount a ``size`` tmpfs at ``where`` (created); False where that is not allowed (not root)."""
    where.mkdir(exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    return r.returncode == 0


def unmount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def fill(disk: Path, leave: int) -> Path:
    """Fill the file system until the kernel says ENOSPC, then give back ``leave`` bytes."""
    ballast = disk / "ballast"
    # unbuffered: a buffered file keeps the bytes that did not fit and fails AGAIN at close, outside
    # the try (a flaky ENOSPC from the `with` line when the disk fills mid-buffer)
    with open(ballast, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    os.truncate(ballast, max(0, ballast.stat().st_size + shutil.disk_usage(disk).free - leave))
    return ballast
