"""Start the tray when a user logs in: XDG autostart on Linux desktops, the Run key on Windows.

Machine-wide (`labedge service install --tray`): ``/etc/xdg/autostart`` (every user; a file of the
same name in a user's ``~/.config/autostart`` overrides it) or ``HKLM\\...\\Run``. Per user
(`labedge service tray-autostart`): ``~/.config/autostart`` or ``HKCU\\...\\Run``.
The tray started this way runs `labedge tray --system`: it reads the service's status file.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Protocol

from agent.machine import ENV_ROOT
from agent.service.managers import Runner, must, run_command
from agent.service.templates import tray_desktop_entry

DESKTOP_NAME = "labedge-tray.desktop"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE = "labedge-tray"


class Autostart(Protocol):
    def install(self, command: list[str]) -> str: ...
    def uninstall(self) -> str | None: ...


class XdgAutostart:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def machine_wide(cls) -> "XdgAutostart":
        return cls(Path(os.environ.get(ENV_ROOT) or "/") / "etc" / "xdg" / "autostart")

    @classmethod
    def this_user(cls) -> "XdgAutostart":
        base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return cls(Path(base) / "autostart")

    @property
    def file(self) -> Path:
        return self.folder / DESKTOP_NAME

    def install(self, command: list[str]) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_suffix(".new")
        tmp.write_text(tray_desktop_entry(command), encoding="utf-8")
        tmp.chmod(0o644)
        os.replace(tmp, self.file)
        return f"tray autostart: {self.file}"

    def uninstall(self) -> str | None:
        if self.file.exists():
            self.file.unlink()
            return f"removed {self.file}"
        return None


class WindowsRunKey:  # the commands are checked on Linux with a recording runner
    def __init__(self, hive: str = "HKLM", run: Runner = run_command) -> None:
        self.key, self.run = f"{hive}\\{RUN_KEY}", run

    def install(self, command: list[str]) -> str:
        value = " ".join(f'"{a}"' if " " in a else a for a in command)
        must(self.run, ["reg", "add", self.key, "/v", RUN_VALUE, "/t", "REG_SZ", "/d", value, "/f"])
        return f"tray autostart: {self.key}\\{RUN_VALUE}"

    def uninstall(self) -> str | None:
        res = self.run(["reg", "delete", self.key, "/v", RUN_VALUE, "/f"])
        return f"removed {self.key}\\{RUN_VALUE}" if res.returncode == 0 else None


def machine_wide() -> Autostart:
    return WindowsRunKey("HKLM") if sys.platform == "win32" else XdgAutostart.machine_wide()


def this_user() -> Autostart:
    return WindowsRunKey("HKCU") if sys.platform == "win32" else XdgAutostart.this_user()
