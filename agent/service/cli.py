"""`labedge service install|uninstall|status|tray-autostart` (steps in agent/service/install.py)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from agent.machine import system_paths


def _admin() -> bool:
    if sys.platform == "win32":  # pragma: no cover - Windows only
        import ctypes
        return bool(ctypes.windll.shell32.IsUserAnAdmin())
    return os.geteuid() == 0


def _need_admin(what: str) -> None:
    if not _admin():
        who = "an Administrator (Run as administrator)" if sys.platform == "win32" else "root (sudo)"
        raise SystemExit(f"labedge service {what}: run this as {who}")


def cmd_service(args: argparse.Namespace) -> int:
    from agent.permissions import PermissionsError
    from agent.service import autostart, install, managers

    try:
        if args.action == "tray-autostart":
            auto = autostart.this_user()
            msg = auto.uninstall() if args.remove else auto.install(
                [*install.self_command(), "tray", "--system"])
            print(msg or "no tray autostart for this user")
            return 0
        if args.action == "status":
            state, words = install.status_words(managers.for_this_os())
            print(words)
            return 0 if state.running else 3
        _need_admin(args.action)
        manager = managers.for_this_os()
        if args.action == "install":
            opts = install.InstallOptions(config=args.config or system_paths().config_file, user=args.user,
                                          tray=args.tray)
            lines = install.install(opts, manager, autostart.machine_wide())
        else:
            lines = install.uninstall(manager, autostart.machine_wide(), purge=args.purge)
    except install.InstallRefused as exc:
        print(f"labedge service install: {exc}", file=sys.stderr)
        return 2
    except (managers.ServiceError, PermissionsError, OSError) as exc:
        print(f"labedge service {args.action}: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


def add_parser(sub) -> None:  # noqa: ANN001
    p = sub.add_parser("service", help="install, remove or inspect the machine-wide service (systemd / WinSW)")
    acts = p.add_subparsers(dest="action", metavar="ACTION")
    acts.required = True
    q = acts.add_parser("install", help="check the config, then install and start the service")
    q.add_argument("--config", "-c", type=Path, default=None,
                   help=f"the config to install (default: {system_paths().config_file}, checked in place)")
    q.add_argument("--user", default="labedge", help="the service account on Linux, created if missing (default labedge)")
    q.add_argument("--tray", action="store_true", help="also start the tray for every user who logs in")
    q.set_defaults(func=cmd_service)
    q = acts.add_parser("uninstall", help="stop and remove the service; spool and state are kept")
    q.add_argument("--purge", action="store_true", help="also delete state, spool (undelivered packages!) and logs")
    q.set_defaults(func=cmd_service)
    q = acts.add_parser("status", help="is the service installed and running, and `labedge status` beside it")
    q.set_defaults(func=cmd_service)
    q = acts.add_parser("tray-autostart", help="start the tray when this user logs in (no admin rights needed)")
    q.add_argument("--remove", action="store_true", help="stop doing so")
    q.set_defaults(func=cmd_service)
