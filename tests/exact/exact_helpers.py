"""Helpers for the exactly-once tests: agents as real `labedge run` processes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from core_helpers import REPO, instrument, labedge, wait_for, write_config


def agent_cfg(root: Path, watch: Path | None = None, *, web_port: int | None = None, name: str = "labedge.toml",
              state: Path | None = None, spool: Path | None = None, **inst: Any) -> Path:
    """A core config under ``root``; with ``web_port`` the local page is on (0 = any free port)."""
    watch = watch or root / "watch"
    watch.mkdir(parents=True, exist_ok=True)
    top: dict[str, Any] = {}
    if state is not None:
        top["state_dir"] = state
    if spool is not None:
        top["spool_dir"] = spool
    cfg = write_config(root, [instrument(watch, **inst)], name=name, **top)
    if web_port is not None:
        cfg.write_text(cfg.read_text().replace("[web]\nenabled = false", f"[web]\nport = {web_port}"))
    return cfg


class Run:
    """`labedge run -c CFG` as a child process, its output in a file."""

    def __init__(self, cfg: Path, log: Path | None = None) -> None:
        self.cfg = cfg
        self.log = log or cfg.with_suffix(f".{len(list(cfg.parent.glob(cfg.stem + '.*.out')))}.out")
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "agent", "run", "-c", str(cfg)], cwd=REPO,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})

    @property
    def pid(self) -> int:
        return self.proc.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def running(self) -> bool:
        """Up and holding its lock: `status` says running with this process's PID."""
        st = status(self.cfg)[1]
        return st["agent"]["running"] and st["agent"]["pid"] == self.pid

    def wait_running(self, timeout: float = 30) -> "Run":
        wait_for(lambda: self.proc.poll() is not None or self.running(), timeout, "the agent to start")
        assert self.proc.poll() is None, self.text()[-3000:]
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(30)


def status(cfg: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    r = labedge("status", "--json", "-c", str(cfg), *extra)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else {}
