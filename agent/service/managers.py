"""Service managers: the one small interface `labedge service` drives, per OS.

Linux: systemd (a unit file from installer/systemd, `systemctl`), with a dedicated system account.
Windows: WinSW (installer/README.md says why): `labedge-service.exe` beside `labedge.exe`, with the
XML from installer/windows. Both only write files and run commands through ``run``, so the Linux
tests drive the real classes with a recording runner, and the install logic with a fake manager.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

from agent.service.templates import ServiceSpec, systemd_unit, winsw_xml

SERVICE = "labedge"


class ServiceError(Exception):
    """The service manager refused or failed; the message says which command and why."""


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    output: str


Runner = Callable[[Sequence[str]], CommandResult]


def run_command(argv: Sequence[str]) -> CommandResult:
    try:
        res = subprocess.run(list(argv), capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        return CommandResult(127, f"{argv[0]}: not found")
    except subprocess.TimeoutExpired:
        return CommandResult(124, f"{' '.join(argv)}: no answer within 120 s")
    return CommandResult(res.returncode, (res.stdout + res.stderr).strip())


def must(run: Runner, argv: Sequence[str]) -> CommandResult:
    res = run(argv)
    if res.returncode != 0:
        raise ServiceError(f"`{' '.join(argv)}` failed (exit {res.returncode}): {res.output}")
    return res


@dataclass(frozen=True)
class ServiceState:
    installed: bool
    running: bool
    detail: str = ""

    def words(self) -> str:
        if not self.installed:
            return "not installed"
        return ("installed, running" if self.running else "installed, NOT running") + \
            (f" ({self.detail})" if self.detail else "")


class ServiceManager(Protocol):
    def ensure_account(self, user: str) -> None: ...
    def install(self, spec: ServiceSpec) -> None: ...
    def uninstall(self) -> None: ...
    def state(self) -> ServiceState: ...


class SystemdManager:
    def __init__(self, run: Runner = run_command, unit_dir: Path = Path("/etc/systemd/system")) -> None:
        self.run, self.unit_dir = run, unit_dir

    @property
    def unit_file(self) -> Path:
        return self.unit_dir / f"{SERVICE}.service"

    def ensure_account(self, user: str) -> None:
        import pwd

        try:
            pwd.getpwnam(user)
            return
        except KeyError:
            pass
        nologin = next((s for s in ("/usr/sbin/nologin", "/sbin/nologin") if os.path.exists(s)), "/bin/false")
        must(self.run, ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", nologin, "--comment", "labedge edge agent", user])

    def install(self, spec: ServiceSpec) -> None:
        self.unit_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.unit_file.with_suffix(".service.new")
        tmp.write_text(systemd_unit(spec), encoding="utf-8")
        tmp.chmod(0o644)
        os.replace(tmp, self.unit_file)
        must(self.run, ["systemctl", "daemon-reload"])
        must(self.run, ["systemctl", "enable", "--now", f"{SERVICE}.service"])

    def uninstall(self) -> None:
        if self.unit_file.exists():
            self.run(["systemctl", "disable", "--now", f"{SERVICE}.service"])  # already stopped is fine
            self.unit_file.unlink()
            must(self.run, ["systemctl", "daemon-reload"])

    def state(self) -> ServiceState:
        if not self.unit_file.exists():
            return ServiceState(False, False)
        active = self.run(["systemctl", "is-active", f"{SERVICE}.service"]).output.strip() or "unknown"
        return ServiceState(True, active == "active", f"systemd: {active}, unit {self.unit_file}")


class WinswManager:  # the commands are checked on Linux with a recording runner
    """WinSW 2.x: `labedge-service.exe` (WinSW-NET461.exe renamed) and its XML of the same name."""

    def __init__(self, install_dir: Path, run: Runner = run_command) -> None:
        self.install_dir, self.run = install_dir, run

    @property
    def exe(self) -> Path:
        return self.install_dir / "labedge-service.exe"

    def ensure_account(self, user: str) -> None:
        """The service runs as LocalSystem (ACLs in agent/permissions.py): no account to create."""

    def install(self, spec: ServiceSpec) -> None:
        if not self.exe.exists():
            raise ServiceError(f"{self.exe} is missing: the folder build ships WinSW as labedge-service.exe "
                               "(installer/windows/fetch-winsw.ps1)")
        self.exe.with_suffix(".xml").write_text(winsw_xml(spec), encoding="utf-8")
        if self.state().installed:
            must(self.run, [str(self.exe), "refresh"])
        else:
            must(self.run, [str(self.exe), "install"])
        must(self.run, [str(self.exe), "start"])

    def uninstall(self) -> None:
        if self.state().installed:
            self.run([str(self.exe), "stop"])
            must(self.run, [str(self.exe), "uninstall"])

    def state(self) -> ServiceState:
        if not self.exe.exists():
            return ServiceState(False, False, f"{self.exe} is missing")
        out = self.run([str(self.exe), "status"]).output.strip()
        # WinSW 2 answers NonExistent / Started / Stopped (3.x: Active / Inactive)
        if "NonExistent" in out:
            return ServiceState(False, False)
        return ServiceState(True, out.startswith(("Started", "Active")), f"WinSW: {out}")


def for_this_os() -> ServiceManager:
    if sys.platform == "win32":  # pragma: no cover - Windows only
        return WinswManager(Path(sys.executable).resolve().parent)
    if shutil.which("systemctl") is None:
        raise ServiceError("systemctl not found: `labedge service` needs systemd on Linux "
                           "(installer/README.md shows how to run `labedge run --system` under another supervisor)")
    return SystemdManager()
