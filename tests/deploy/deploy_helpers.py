"""Helpers for the deployment tests: a machine-wide root other accounts can reach, running code as
another account (we are root in CI: a child drops to `nobody` with setuid), waiting for files."""
from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
OTHER_USER = "nobody"


def open_root() -> Path:
    """A temp folder standing in for `/` that every account may traverse (pytest's tmp_path is 0700)."""
    root = Path(tempfile.mkdtemp(prefix="labedge-root-"))
    root.chmod(0o755)
    return root


def remove_root(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)


def need_root() -> None:
    import pytest

    if os.geteuid() != 0:
        msg = "dropping to another account needs root (CI runs as root)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg)
        pytest.skip(msg)


def as_user(user: str) -> Callable[[], None]:
    pw = pwd.getpwnam(user)

    def drop() -> None:
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    return drop


def _others_may_run(path: Path) -> bool:
    path = path.resolve()
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents])


def other_user_python() -> tuple[str, dict[str, str]]:
    """An interpreter another account can execute, and the environment that finds our packages.

    CI's venv is made from Debian's python3, which anyone may run. A developer's interpreter may
    live under /root (pyenv, 0700): then Debian's python of the same version runs the venv's
    site-packages (same ABI), with the checkout first on the path."""
    if _others_may_run(Path(sys.executable)):
        return sys.executable, {}
    import site

    system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    if not system.exists():
        import pytest
        pytest.fail(f"{sys.executable} is not executable by other accounts and {system} is absent")
    return str(system), {"PYTHONPATH": os.pathsep.join([str(REPO), *site.getsitepackages()])}


def user_env(env: dict[str, str]) -> tuple[str, dict[str, str]]:
    python, extra = other_user_python()
    return python, {**env, **extra, "HOME": "/tmp"}


def run_as(user: str, code: str, env: dict[str, str], *args: str, timeout: float = 30) -> dict:
    """Run Python ``code`` (with ``args``) as ``user``; it prints one JSON object, which is returned."""
    python, env = user_env(env)
    res = subprocess.run([python, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                         cwd=REPO, env=env, preexec_fn=as_user(user))
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def wait_for(cond: Callable[[], object], timeout: float, what: str, interval: float = 0.1) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def mode(p: Path) -> int:
    return p.stat().st_mode & 0o777


class FakeServiceManager:
    """Records what `labedge service` asks of the OS's service manager (the Windows stand-in)."""

    def __init__(self, installed: bool = False, running: bool = False) -> None:
        from agent.service.managers import ServiceState

        self.calls: list[tuple] = []
        self._state = ServiceState(installed, running, "fake")

    def ensure_account(self, user: str) -> None:
        self.calls.append(("ensure_account", user))

    def install(self, spec) -> None:  # noqa: ANN001
        from agent.service.managers import ServiceState

        self.calls.append(("install", spec))
        self._state = ServiceState(True, True, "fake")

    def uninstall(self) -> None:
        from agent.service.managers import ServiceState

        self.calls.append(("uninstall",))
        self._state = ServiceState(False, False)

    def state(self):  # noqa: ANN201
        return self._state


def checker_as_user(config: Path, user: str | None):  # noqa: ANN201
    """The real `labedge check --config`, as ``user`` when given, with an interpreter that user can run."""
    from agent.service.managers import CommandResult

    python, env = user_env(dict(os.environ))
    extra = {"preexec_fn": as_user(user)} if user and user != "root" else {}
    res = subprocess.run([python, "-m", "agent", "check", "--config", str(config)], capture_output=True, text=True,
                         timeout=60, cwd=REPO, env=env, **extra)
    return CommandResult(res.returncode, (res.stderr + res.stdout).strip())


def owner(p: Path) -> str:
    return pwd.getpwuid(p.stat().st_uid).pw_name
