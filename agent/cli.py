"""The `labedge` command line. Each subcommand module exposes ``add_parser(subparsers)``."""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from pathlib import Path

from agent import __version__
from agent.config import ConfigError, default_config_path, load_config

log = logging.getLogger("labedge")

#: Subcommand modules contributed by the other subsystems, wired in one place.
COMMAND_MODULES = [
    "translators.cli",         # translate, translators
    "translators.worker",      # _translate-worker (the sandbox child)
    "agent.transport.cli",     # enroll (the device side)
    "facility.cli",            # receive, pki (the facility side)
    "facility.fleet.cli",      # fleet status/serve, + the actions in facility.fleet.cli.FLEET_ACTION_MODULES
    "agent.demo",              # demo
    "agent.sheets.cli",        # sheet
    "tray.app",                # tray
    "agent.check",             # check
    "agent.service.cli",       # service install|uninstall|status
    "facility.rde_export",     # rde-export (official NIMS templates, RDEFormat zip)
    "facility.remote.cli",     # fleet keys/config; last: joins the fleet group if it exists (see the module)
]


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", type=Path, default=None,
                   help=f"config file (default: {default_config_path()})")


def _system_arg(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--system", action="store_true", help=f"machine-wide mode: {what} (see installer/README.md)")


def _config_path(args: argparse.Namespace) -> Path:
    if args.config is not None:
        return args.config
    if getattr(args, "system", False):
        from agent.machine import system_paths
        return system_paths().config_file
    return default_config_path()


def cmd_run(args: argparse.Namespace) -> int:
    from agent.check import load_checked_config
    from agent.instance import AlreadyRunning
    from agent.logs import setup_logging
    from agent.machine import prepare_service_dirs
    from agent.permissions import PermissionsError, for_this_os
    from agent.private import apply_private_umask
    from agent.runner import Agent

    apply_private_umask()  # the agent process writes only owner-only files (security 6)
    from agent.remote.hook import settle_before_start
    # a trial a crash interrupted: roll back before the checks (its layer may be what fails them)
    settle_before_start(_config_path(args), system=args.system)
    cfg = load_checked_config(_config_path(args), system=args.system)
    warnings: list[str] = []
    if cfg.mode == "system":
        try:
            warnings = prepare_service_dirs(cfg, for_this_os())
        except PermissionsError as exc:
            print(f"labedge: {exc}", file=sys.stderr)
            return 2
    try:
        agent = Agent(cfg)  # first of all it takes the one-agent locks (agent.instance)
    except AlreadyRunning as exc:
        print(f"labedge: {exc}", file=sys.stderr)
        return 2
    path = setup_logging(cfg.log_dir, cfg.log_level, console=True)
    log.info("logging to %s", path)
    for w in warnings:
        log.warning("%s", w)
    return agent.run_forever()


def cmd_status(args: argparse.Namespace) -> int:
    from agent.status import build_status, exit_code, format_status

    if args.system and args.config is None:  # any user: the service's status file, never its DB
        from agent.machine import system_paths
        from agent.status_file import StatusFileError, read_status_file
        try:
            st = read_status_file(system_paths().status_file)
        except StatusFileError as exc:
            print(f"labedge status: {exc}", file=sys.stderr)
            return 1
        print_safely(json.dumps(st, indent=2, ensure_ascii=False) if args.json else format_status(st))
        return exit_code(st)  # the file holds what build_status said; a stale file is "not running"
    cfg = load_config(_config_path(args), check_watch_folders=False, system=args.system)
    st = build_status(cfg)
    print_safely(json.dumps(st, indent=2, ensure_ascii=False) if args.json else format_status(st))
    return exit_code(st)


def print_safely(text: str) -> None:
    """Print for a pipe that may close early (`status --json | head -c 10`): no BrokenPipe traceback."""
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit; point it at devnull so that flush cannot fail either
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def cmd_init(args: argparse.Namespace) -> int:
    from agent.starter_config import write_starter

    out: Path = args.out or default_config_path()
    if out.exists() and not args.force:
        raise ConfigError(f"{out} already exists; use --force to overwrite it")
    print(write_starter(out, device_id=args.device_id, instrument_id=args.instrument_id, watch=args.watch))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from agent.package.verify import verify_package

    rc = 0
    for p in args.package:
        res = verify_package(p)
        if res.ok:
            print(f"OK   {p}: bag valid, {res.files} files, {res.bytes} bytes, all sha256 match")
        else:
            rc = 1
            print(f"BAD  {p}:")
            for problem in res.problems:
                print(f"     {problem}")
    return rc


def cmd_retry(args: argparse.Namespace) -> int:
    from agent.state.store import StateStore

    cfg = load_config(args.config or default_config_path(), check_watch_folders=False)
    store = StateStore(cfg.state_db)
    try:
        n = store.retry_failed()
    finally:
        store.close()
    print(f"{n} failed package(s) put back in the queue")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labedge", description="Edge agent for instrument PCs: watch, pair, "
                                     "translate, package and upload measurements.")
    parser.add_argument("--version", action="version", version=f"labedge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("run", help="run the agent in the foreground (what the service runs)")
    _config_arg(p)
    _system_arg(p, "machine-wide folders, private state and key, a status file every user can read")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="queue and health; exit 0 running and healthy, 1 running with problems, "
                       "3 not running, 2 bad config")
    _config_arg(p)
    _system_arg(p, "the service's status, read from its status file (any user may)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("init", help="write a commented starter config")
    p.add_argument("--out", type=Path, default=None, help=f"where to write it (default: {default_config_path()})")
    p.add_argument("--device-id", default="instrument-pc-01", help="this PC's device id (certificate CN)")
    p.add_argument("--instrument-id", default="instrument-01")
    p.add_argument("--watch", type=Path, default=None, help="the instrument's output folder")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("verify", help="check a package's bag, hashes and layout")
    p.add_argument("package", type=Path, nargs="+")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("retry", help="put failed packages back in the upload queue")
    _config_arg(p)
    p.set_defaults(func=cmd_retry)

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name or name.startswith(str(exc.name) + "."):
                continue  # subsystem not built into this distribution
            _broken(name, exc)
            continue
        except Exception as exc:  # one broken subsystem must not take every command down
            _broken(name, exc)
            continue
        try:
            module.add_parser(sub)
        except Exception as exc:
            _broken(name, exc)
    return parser


def _broken(module: str, exc: BaseException) -> None:
    print(f"labedge: warning: the commands of {module} are unavailable ({type(exc).__name__}: {exc})",
          file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"labedge: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
