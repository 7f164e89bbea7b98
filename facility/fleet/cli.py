"""``labedge fleet ...``: the facility administrator's commands (fleet.toml).

Built in here: ``status`` (one line per device) and ``serve`` (the dashboard).

Extending it (the remote-commands, certificate and remote-configuration features): write a module
with ``add_fleet_parser(fleet_sub)`` (``add_fleet_commands`` is accepted too), where ``fleet_sub`` is the ``labedge fleet`` subparsers
object, and add its name to :data:`FLEET_ACTION_MODULES` (one line), e.g.::

    def add_fleet_parser(fleet_sub):
        p = fleet_sub.add_parser("command", help="...")
        add_fleet_config_arg(p)               # the shared --config fleet.toml option
        p.set_defaults(func=cmd_command)      # func(args) -> exit code; ConfigError -> exit 2

``load(args)`` gives the FleetConfig; ``facility.fleet.admin_link.make_link`` the admin connection.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from facility.fleet_config import FleetConfig, load_fleet_config

#: Modules contributing more ``labedge fleet`` actions (each with ``add_fleet_parser(fleet_sub)``).
FLEET_ACTION_MODULES: list[str] = [
    "facility.remote.cli",     # keys, config (signed remote configuration)
    "facility.fleet_command",  # command (signed remote commands, docs/fleet-operations.md)
]


def add_fleet_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", type=Path, required=True, help="fleet.toml (config/schema/fleet.v1)")


def load(args: argparse.Namespace) -> FleetConfig:
    return load_fleet_config(args.config)


def cmd_status(args: argparse.Namespace) -> int:
    from facility.fleet.admin_link import FleetWatcher, snapshot
    from facility.fleet.data import FleetData
    from facility.fleet.view import format_table
    from wire.protocol import ProtocolError
    from wire.tls import TransportError

    cfg = load(args)
    data = FleetData(cfg)
    try:
        if args.watch:
            try:
                return _watch(cfg, data, args, FleetWatcher)
            except TransportError as exc:
                print(f"labedge fleet status: {exc}", file=sys.stderr)
                return 2
        broker_note = None
        try:
            statuses = snapshot(cfg)
        except (TransportError, ProtocolError) as exc:
            statuses, broker_note = {}, f"broker {cfg.broker}: {exc}"
        lines = _only(data.lines(statuses), args.devices)
        now = time.time()
        if args.json:
            print(json.dumps({"generated_at": now, "broker_error": broker_note, "catalog_note": data.catalog_note,
                              "devices": [d.as_dict() for d in lines]}, indent=2, ensure_ascii=False))
        else:
            print(format_table(lines, now))
            for note in (broker_note, data.catalog_note):
                if note:
                    print(f"note: {note}", file=sys.stderr)
        if broker_note and not lines:
            return 3
        return 1 if args.check and any(d.state != "ok" for d in lines) else 0
    finally:
        data.close()


def _only(lines: list[Any], devices: list[str]) -> list[Any]:
    return [d for d in lines if d.device in devices] if devices else lines


def _watch(cfg: FleetConfig, data: Any, args: argparse.Namespace, watcher_cls: Any) -> int:
    from facility.fleet.view import format_table
    w = watcher_cls(cfg)
    w.start()
    tty = sys.stdout.isatty()
    try:
        while True:
            time.sleep(args.every)
            lines = _only(data.lines(w.statuses()), args.devices)
            now = time.time()
            if args.json:
                print(json.dumps({"generated_at": now, "connected": w.connected,
                                  "devices": [d.as_dict() for d in lines]}, ensure_ascii=False), flush=True)
                continue
            if tty:
                print("\x1b[H\x1b[2J", end="")
            print(time.strftime("%H:%M:%S"), "" if w.connected else f"(not connected: {w.why_disconnected})")
            print(format_table(lines, now), flush=True)
    except KeyboardInterrupt:
        return 0
    finally:
        w.stop()


def cmd_serve(args: argparse.Namespace) -> int:
    from facility.fleet.dashboard import serve
    from wire.tls import TransportError
    try:
        return serve(load(args), host=args.host, port=args.port)
    except TransportError as exc:
        print(f"labedge fleet serve: {exc}", file=sys.stderr)
        return 2


def add_parser(sub: Any) -> None:
    fleet = sub.add_parser("fleet", help="facility administrators: the fleet's status, the dashboard (fleet.toml)",
                           description="Look after the fleet from the facility. See docs/facility.md.")
    fsub = fleet.add_subparsers(dest="fleet_command", metavar="ACTION")
    fsub.required = True

    p = fsub.add_parser("status", help="one line per device, what needs attention first")
    add_fleet_config_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--watch", action="store_true", help="follow changes (Ctrl-C to stop)")
    p.add_argument("--check", action="store_true",
                   help="exit 1 if any device shown is not ok (for monitoring scripts)")
    p.add_argument("devices", nargs="*", metavar="DEVICE", help="only these devices (default: all)")
    p.add_argument("--every", type=float, default=2.0, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_status)

    p = fsub.add_parser("serve", help="the fleet dashboard (127.0.0.1 by default, token required)")
    add_fleet_config_arg(p)
    p.add_argument("--host", default=None, help="bind address (default: fleet.toml [dashboard] host, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default: fleet.toml [dashboard] port, 8780)")
    p.set_defaults(func=cmd_serve)

    for name in FLEET_ACTION_MODULES:
        try:
            module = importlib.import_module(name)
            (getattr(module, "add_fleet_parser", None) or module.add_fleet_commands)(fsub)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            print(f"labedge: warning: the fleet actions of {name} are unavailable ({exc})", file=sys.stderr)
        except Exception as exc:  # noqa: BLE001 - one broken feature must not take the others down
            print(f"labedge: warning: the fleet actions of {name} are unavailable ({exc})", file=sys.stderr)
