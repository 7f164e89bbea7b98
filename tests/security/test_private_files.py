"""Finding 6: nothing the agent (or `labedge pki init`) writes is readable by another local account,
whatever the umask it was started with, and translator worker logs stay in the private state dir."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

from transport_helpers import REPO, wait_for


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.lstat().st_mode)


def _loose(root: Path) -> list[str]:
    """Every path below ``root`` whose group/other bits are set (symlinks have none of their own)."""
    bad = []
    for p in [root, *root.rglob("*")]:
        if not p.is_symlink() and _mode(p) & 0o077:
            bad.append(f"{p.relative_to(root.parent)} {_mode(p):o}")
    return bad


def _write_config(root: Path, watch: Path) -> Path:
    cfg = root / "agent.toml"
    cfg.write_text(f'device_id = "pc-1"\nspool_dir = "{root / "spool"}"\nstate_dir = "{root / "state"}"\n'
                   f'log_dir = "{root / "logs"}"\n[web]\nenabled = false\n[[instruments]]\nid = "inst"\n'
                   f'watch = ["{watch}"]\nsettle_seconds = 0.3\nunpaired_policy = "send"\nhold_seconds = 0\n')
    return cfg


def test_agent_files_are_private_under_umask_000(tmp_path):
    watch = tmp_path / "watch"
    watch.mkdir()
    root = tmp_path / "pc"
    root.mkdir()
    # what an older version (or an installer) left: world-readable dirs and DB
    (root / "spool").mkdir(mode=0o755)
    (root / "state").mkdir(mode=0o755)
    (root / "state" / "state.sqlite3").touch(mode=0o644)
    os.chmod(root / "state" / "state.sqlite3", 0o644)
    os.chmod(root / "state", 0o755)
    cfg = _write_config(root, watch)
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(private_tmp), "PYTHONUNBUFFERED": "1"}
    out = open(tmp_path / "agent.out", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "agent", "run", "-c", str(cfg)], cwd=REPO, env=env,
                            stdout=out, stderr=subprocess.STDOUT, preexec_fn=lambda: os.umask(0))
    out.close()
    try:
        (watch / "scan-001.txt").write_text("2theta intensity\n10 1\n20 2\n")
        wait_for(lambda: list((root / "spool" / "packages").glob("*/bagit.txt")) or proc.poll() is not None,
                 40, "the measurement to be packaged")
        assert proc.poll() is None, (tmp_path / "agent.out").read_text()
        wait_for(lambda: list((root / "state" / "workers").glob("labedge-worker-*.log")), 20,
                 "the translator worker's log in the state dir")
        for top in ("spool", "state", "logs"):
            assert _mode(root / top) == 0o700, f"{top} is {_mode(root / top):o}"
            assert _loose(root / top) == [], _loose(root / top)
        assert list(private_tmp.glob("labedge-worker-*")) == [], "worker logs went to the shared temp dir"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(20)
    # a killed agent's worker log is private, and the next start removes it
    left = list((root / "state" / "workers").glob("labedge-worker-*.log"))
    assert left
    proc = subprocess.Popen([sys.executable, "-m", "agent", "run", "-c", str(cfg)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: not any(p.exists() for p in left), 20, "stale worker logs to be removed")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_pki_init_ca_folder_is_private_under_umask_000(tmp_path):
    out = tmp_path / "ca"
    res = subprocess.run([sys.executable, "-m", "agent", "pki", "init", "--out", str(out)], cwd=REPO,
                         capture_output=True, text=True, timeout=60, preexec_fn=lambda: os.umask(0))
    assert res.returncode == 0, res.stderr
    assert _mode(out) == 0o700  # nobody else can even look inside (the public ca.pem is copied out)
    assert _mode(out / "ca.key") == 0o600
