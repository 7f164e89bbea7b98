"""Helpers for the sample-sheet tests: a real in-process agent, HTTP helpers, rde-validate."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from testpaths import RDE_VALIDATE, REPO, in_ci, require_shared  # noqa: F401 - re-exported to the sheet tests

OWNER = "a1" * 28

FIB_VALUES = {"basic.dateSubmitted": "2026-11-20", "sample.names": "W-tip-07", "sample.composition": "W",
              "custom.acceleration_voltage": 30, "custom.beam_current": 48, "custom.mask_inner_diameter": 1.5,
              "custom.mask_outer_diameter": 5.0, "custom.processing_time": 900, "custom.ion_species": "Ga"}


def wait_for(cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def run_rde_validate(path: Path) -> None:
    require_shared(RDE_VALIDATE)
    r = subprocess.run([str(RDE_VALIDATE), str(path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"rde-validate {path} failed:\n{r.stdout}\n{r.stderr}"


def validate_schema_file(schema: dict | Path, tmp: Path) -> subprocess.CompletedProcess:
    """rde-validate needs the file NAMED invoice.schema.json."""
    require_shared(RDE_VALIDATE)
    d = tmp / f"schema-{time.monotonic_ns()}"
    d.mkdir()
    target = d / "invoice.schema.json"
    if isinstance(schema, Path):
        shutil.copy(schema, target)
    else:
        target.write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")
    return subprocess.run([str(RDE_VALIDATE), str(target)], capture_output=True, text=True, timeout=300)


@dataclass
class AgentEnv:
    root: Path
    watch: Path
    config: Path
    extra: dict[str, Any] = field(default_factory=dict)
    agent: Any = None

    def start(self) -> Any:
        from agent.config import load_config
        from agent.runner import Agent

        self.agent = Agent(load_config(self.config))
        self.agent.start()
        assert self.agent.web is not None and self.agent.web.port, "the local page did not start"
        return self.agent

    def stop(self) -> None:
        if self.agent is not None:
            leaked = self.agent.stop()
            self.agent = None
            assert leaked == [], f"threads leaked: {leaked}"

    @property
    def port(self) -> int:
        return self.agent.web.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return self.agent.web.token

    def request(self, method: str, path: str, body: Any = None, *, token: str | None = "auto",
                headers: dict[str, str] | None = None, raw: bytes | None = None) -> tuple[int, Any]:
        h = {"Content-Type": "application/json"}
        if token == "auto":
            h["X-Labedge-Token"] = self.token
        elif token is not None:
            h["X-Labedge-Token"] = token
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                payload = r.read()
                status = r.status
                ctype = r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            payload, status, ctype = e.read(), e.code, e.headers.get("Content-Type", "")
        return status, (json.loads(payload) if "json" in ctype and payload else payload.decode("utf-8", "replace"))

    def post(self, path: str, body: Any, **kw: Any) -> tuple[int, Any]:
        return self.request("POST", path, body, **kw)

    def packages(self) -> list[Any]:
        return self.agent.store.list_packages()

    def wait_packages(self, n: int, timeout: float = 60.0) -> list[Any]:
        return wait_for(lambda: (p := self.packages()) and len(p) >= n and p, timeout, f"{n} package(s)")

    def invoice(self, pkg: Any) -> dict[str, Any]:
        return json.loads((Path(pkg.path) / "data/invoice/invoice.json").read_text(encoding="utf-8"))

    def provenance(self, pkg: Any) -> dict[str, Any]:
        return json.loads((Path(pkg.path) / "data/labedge/provenance.json").read_text(encoding="utf-8"))

    def holds(self) -> list[Any]:
        from agent.sheets.sheetdb import SheetDB
        return SheetDB(self.agent.store).holds()

    def drop(self, name: str, data: bytes = b"measurement\n" * 10, folder: Path | None = None) -> Path:
        """Write a file atomically (as an instrument finishing a file) into the watched folder."""
        d = folder or self.watch
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / (name + ".part")
        tmp.write_bytes(data)
        tmp.rename(d / name)
        return d / name


def write_config(root: Path, *, instruments: str | None = None, extra_top: str = "") -> Path:
    watch = root / "watch"
    watch.mkdir(parents=True, exist_ok=True)
    inst = instruments if instruments is not None else f'''
[[instruments]]
id = "fib01"
template = "fib-atom-probe"
watch = ["{watch.as_posix()}"]
settle_seconds = 0.3
unpaired_policy = "hold"
'''
    cfg = root / "labedge.toml"
    cfg.write_text(f'''device_id = "testpc"
default_owner_id = "{OWNER}"
spool_dir = "{(root / 'spool').as_posix()}"
state_dir = "{(root / 'state').as_posix()}"
log_dir = "{(root / 'log').as_posix()}"
rescan_seconds = 3600
{extra_top}
[web]
port = 0
[sheets]
owners = [{{id = "{OWNER}", name = "Yamada Hanako"}}]
datasets = [{{id = "fib-3dap-2026", name = "FIB for 3DAP"}}]
proposals = [{{id = "JPMXP1226NM0001", name = "JPMXP1226NM0001"}}]
{inst}
''', encoding="utf-8")
    return cfg


