"""Which program listens on a local TCP port, when the OS lets us ask (for "port in use" messages).

Linux: /proc/net/tcp{,6} gives the listening socket's inode; /proc/<pid>/fd links name it.
Windows: `netstat -ano` gives the PID, `tasklist` its image name. Anything we cannot read
(another user's processes without privileges) just means we say less.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LISTEN = "0A"


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) > 9 and f[3] == LISTEN and int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f[9])
    return inodes


def _linux(port: int) -> tuple[int, str] | None:
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    wanted = {f"socket:[{i}]" for i in inodes}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    return int(pid), cmd.strip()[:200]
            except OSError:
                continue
    return None


def _windows(port: int) -> tuple[int, str] | None:  # pragma: no cover - Windows only
    try:
        out = subprocess.run(["netstat", "-ano", "-p", "TCP"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 5 and f[3].upper() == "LISTENING" and f[1].rsplit(":", 1)[-1] == str(port):
            pid = int(f[4])
            try:
                task = subprocess.run(["tasklist", "/FI", f"PID eq {pid}", "/FO", "CSV", "/NH"],
                                      capture_output=True, text=True, timeout=10).stdout
                name = task.split(",", 1)[0].strip('"') if task.startswith('"') else "?"
            except (OSError, subprocess.SubprocessError):
                name = "?"
            return pid, name
    return None


def port_owner(port: int) -> tuple[int, str] | None:
    """(pid, command line or program name) of the process listening on ``port``, if it can be told."""
    if sys.platform.startswith("linux"):
        return _linux(port)
    if sys.platform == "win32":  # pragma: no cover
        return _windows(port)
    return None


def port_in_use_message(port: int, what: str = "local page") -> str:
    owner = port_owner(port)
    who = f"PID {owner[0]} ({owner[1] or 'no command line'}) listens on it" if owner else \
        "another program listens on it"
    return (f"{what}: cannot listen on 127.0.0.1:{port}: {who}. Choose another port in the config's [web] "
            f"section, e.g. port = {port + 1 if port < 65535 else 8765}, or port = 0 for any free port")
