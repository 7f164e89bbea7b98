"""Helpers for the core-agent tests: configs, waiting on conditions, reading the state DB."""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from agent.config import load_config
from agent.runner import Agent

REPO = Path(__file__).resolve().parents[2]


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (str, Path)):
        return json.dumps(str(v))  # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def write_config(root: Path, instruments: list[dict[str, Any]], *, name: str = "labedge.toml",
                 **top: Any) -> Path:
    """A config with spool/state/log under ``root`` (web page off); ``top`` adds top-level keys."""
    top = {"device_id": "test-pc-01", "spool_dir": root / "spool", "state_dir": root / "state",
           "log_dir": root / "log", **top}
    lines = [f"{k} = {_toml(v)}" for k, v in top.items()]
    lines += ["", "[web]", "enabled = false"]
    for inst in instruments:
        lines += ["", "[[instruments]]"] + [f"{k} = {_toml(v)}" for k, v in inst.items()]
    path = root / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def instrument(watch: Path | list[Path], iid: str = "xrd-1", **opts: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"id": iid, "watch": [str(w) for w in (watch if isinstance(watch, list) else [watch])],
                         "settle_seconds": 0.3,
                         # the sample-sheet pairer holds a measurement without a sheet for
                         # hold_seconds; these tests are about the core path, so send at once
                         "unpaired_policy": "send", "hold_seconds": 0,
                         # the tiny RAS snippets these tests write look truncated to the translator;
                         # waiting for them to change is tested in tests/exact
                         "truncated_grace_seconds": 0}
    d.update(opts)
    return d


def wait_for(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``pred`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last value: {last!r})")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _connect(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)


def db_packages(db: Path) -> list[dict[str, Any]]:
    if not Path(db).exists():
        return []
    con = _connect(db)
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute("SELECT * FROM packages ORDER BY id")]
    except sqlite3.OperationalError:  # tables not created yet
        return []
    finally:
        con.close()


def db_files(db: Path) -> list[dict[str, Any]]:
    if not Path(db).exists():
        return []
    con = _connect(db)
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute("SELECT * FROM files ORDER BY path, version")]
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def packages_with(db: Path, source: Path) -> list[dict[str, Any]]:
    """File rows (one per package) that took ``source``."""
    return [f for f in db_files(db) if f["path"] == str(source)]


def package_dirs(spool: Path) -> list[Path]:
    d = spool / "packages"
    return sorted(p for p in d.iterdir()) if d.is_dir() else []


def provenance(pkg_dir: Path) -> dict[str, Any]:
    return json.loads((pkg_dir / "data/labedge/provenance.json").read_text(encoding="utf-8"))


def labedge(*args: str, timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess:
    """Run the CLI as a user would (``python -m agent``), capturing output."""
    return subprocess.run([sys.executable, "-m", "agent", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, **kw)


def status_json(cfg: Path) -> dict[str, Any]:
    r = labedge("status", "--json", "-c", str(cfg))
    assert r.returncode in (0, 1, 3), r.stderr  # healthy, problems, not running (2 = bad config)
    return json.loads(r.stdout)


def write_slowly(path: Path, chunks: list[bytes], pause: float) -> None:
    """Write like an instrument does: one open file, flushed piece by piece."""
    with open(path, "wb") as fh:
        for i, c in enumerate(chunks):
            fh.write(c)
            fh.flush()
            os.fsync(fh.fileno())
            if i < len(chunks) - 1:
                time.sleep(pause)


def start_agent_process(cfg: Path, log: Path, **kw: Any) -> subprocess.Popen:
    out = open(log, "ab")
    try:
        return subprocess.Popen([sys.executable, "-m", "agent", "run", "-c", str(cfg)], cwd=REPO,
                                stdout=out, stderr=subprocess.STDOUT, **kw)
    finally:
        out.close()


@pytest.fixture()
def run_agent() -> Callable[..., Agent]:
    """``start(cfg_path)`` -> a started in-process Agent; ``start.stop(agent)`` -> leaked thread
    names. Agents still running are stopped at teardown; a thread that does not stop fails the
    test. (A fixture here, imported by the test modules, rather than a second conftest.py: the
    repository's test folders have no __init__.py, so every conftest is a module named "conftest".)"""
    running: list[Agent] = []

    def start(cfg_path: Path, **kw: Any) -> Agent:
        agent = Agent(load_config(cfg_path), **kw)
        agent.start()
        running.append(agent)
        return agent

    def stop(agent: Agent) -> list[str]:
        running.remove(agent)
        return agent.stop()

    start.stop = stop  # type: ignore[attr-defined]
    yield start
    leaked = []
    for agent in running:
        leaked += agent.stop()
    assert leaked == [], f"threads leaked: {leaked}"
