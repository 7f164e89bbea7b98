"""How the agent starts a copy of itself (translator sandbox, demo children).

A PyInstaller build has no Python interpreter to pass ``-m`` to, so the command differs
between a frozen executable and a normal install.
"""
from __future__ import annotations

import sys


def self_command() -> list[str]:
    """argv prefix that runs ``labedge`` in a child process: append a subcommand and its args."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "agent"]
