"""`labedge fleet config status|push|diff|history`: signed remote configuration from the facility."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from config.validation import ConfigError
from wire.identity import PKIError

#: push exit codes: 0 every device applied, 1 stopped (failures or abort), 3 some did not answer
EXIT_DONE, EXIT_STOPPED, EXIT_INCOMPLETE = 0, 1, 3


def _session(cfg: Any) -> Any:
    from facility.remote.session import AdminSession
    s = AdminSession(cfg)
    s.connect()
    s.settle()
    return s


def _history(cfg: Any) -> Any:
    """The push history in the catalog fleet.toml names (read-write: see docs/remote-config.md)."""
    from facility.remote.history import open_history
    return open_history(cfg.catalog_url, cfg.source, say=lambda line: print(line, file=sys.stderr))


def _errors(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        from facility.remote.history import HistoryError
        from facility.remote.rollout import RolloutError
        from wire.tls import TransportError
        try:
            return fn(args)
        except (RolloutError, TransportError, PKIError, HistoryError) as exc:
            print(f"labedge fleet config: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"labedge fleet config: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    return run


def _targets(args: argparse.Namespace, statuses: dict[str, Any]) -> tuple[list[str], str | None]:
    from facility.remote.rollout import RolloutError, members
    from wire.topics import GROUP_RE, _check_device
    if bool(args.to) == bool(args.group):
        raise RolloutError("name the devices with --to DEVICE (repeatable) or one group with --group NAME")
    if args.group:
        if not GROUP_RE.match(args.group):
            raise RolloutError(f"bad group name {args.group!r}")
        found = members(statuses, args.group)
        if not found:
            raise RolloutError(f"no device reports group {args.group!r} (a device joins groups in its own "
                               "labedge.toml: [remote] groups)")
        return found, args.group
    for d in args.to:
        try:
            _check_device(d)
        except Exception:
            raise RolloutError(f"bad device id {d!r}") from None
    return sorted(set(args.to)), None


def _fleet(args: argparse.Namespace) -> Any:
    from facility.fleet_config import load_fleet_config
    return load_fleet_config(args.config)


@_errors
def cmd_push(args: argparse.Namespace) -> int:
    from facility.keys import PassphraseSource, Signer
    from facility.remote.rollout import RolloutError, check_fragment, run_rollout
    cfg = _fleet(args)
    history = _history(cfg)
    try:
        if args.abort:
            ids = history.request_abort()
            print(f"abort requested for push {', '.join(map(str, ids))}" if ids else "no rollout in progress")
            return 0
        if args.file is None:
            raise RolloutError("name the config fragment FILE.toml to push")
        text = Path(args.file).read_text(encoding="utf-8")
        check_fragment(text)  # before asking for a passphrase
        if cfg.signing_key is None:
            raise RolloutError(f"{cfg.source}: signing_key is not set (the administrator key from "
                               "`labedge fleet keys init`)")
        signer = Signer.from_file(cfg.signing_key, PassphraseSource(args.passphrase_fd))
        session = _session(cfg)
        try:
            devices, group = _targets(args, session.statuses())
            res = run_rollout(session, history, signer, text=text, devices=devices, group=group,
                              canary=args.canary, max_failures=args.max_failures, wait=args.wait,
                              version=args.version)
        finally:
            session.stop()
    finally:
        history.close()
    return {"done": EXIT_DONE, "incomplete": EXIT_INCOMPLETE}.get(res.state, EXIT_STOPPED)


@_errors
def cmd_status(args: argparse.Namespace) -> int:
    from facility.remote.session import config_section, outcome_for
    cfg = _fleet(args)
    history = _history(cfg)  # a catalog that cannot be opened says so before the broker is asked
    try:
        session = _session(cfg)
        try:
            statuses = session.statuses()
        finally:
            session.stop()
        for r in history.unanswered():  # what a device did later (it was offline during the push)
            got = outcome_for(statuses.get(r["device"]), r["version"])
            if got:
                history.result(r["push_id"], r["device"], r["version"], got[0], got[1])
        pushes = history.pushes(limit=args.history)
    finally:
        history.close()
    rows = []
    for d, doc in sorted(statuses.items()):
        c = config_section(doc)
        rows.append({"device": d, "online": bool(doc.get("online")), "desired_version": c.get("desired_version"),
                     "applied_version": c.get("applied_version"), "state": c.get("state", "?"),
                     "version": c.get("event_version"), "reason": c.get("error") or "",
                     "groups": c.get("groups") or []})
    if args.json:
        print(json.dumps({"devices": rows, "pushes": pushes}, indent=2, ensure_ascii=False))
        return 0
    print(f"{'DEVICE':<20} {'ONLINE':<7} {'DESIRED':>7} {'APPLIED':>7}  STATE        REASON")
    for r in rows:
        print(f"{r['device']:<20} {'yes' if r['online'] else 'no':<7} {str(r['desired_version'] or '-'):>7} "
              f"{str(r['applied_version'] or '-'):>7}  {r['state']:<12} {r['reason']}")
    for p in pushes:
        counts: dict[str, int] = {}
        for x in p["results"]:
            counts[x["state"]] = counts.get(x["state"], 0) + 1
        print(f"push {p['id']}: version {p['version']} by {p['signer']}"
              + (f" on {p['host']}" if p.get("host") else "") + f" to {p['targets']}: {p['state']} "
              + " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    return 0


@_errors
def cmd_diff(args: argparse.Namespace) -> int:
    from facility.remote.rollout import diff_lines
    cfg = _fleet(args)
    text = Path(args.file).read_text(encoding="utf-8")
    history = _history(cfg)
    try:
        session = _session(cfg)
        try:
            statuses = session.statuses()
            devices, _ = _targets(args, statuses)
        finally:
            session.stop()
        print("\n".join(diff_lines(history, statuses, devices, text)))
    finally:
        history.close()
    return 0


def _target_args(q: argparse.ArgumentParser) -> None:
    q.add_argument("--to", action="append", default=[], metavar="DEVICE", help="a device (repeatable)")
    q.add_argument("--group", default=None, metavar="NAME", help="every device that reports this group")


def add_config_parser(fleet_sub: Any) -> None:
    p = fleet_sub.add_parser("config", help="signed remote configuration: status, push (staged), diff",
                             description="Push a signed TOML fragment that devices merge over their own "
                                         "labedge.toml, try, and keep or roll back. See docs/remote-config.md.")
    cs = p.add_subparsers(dest="config_command", metavar="CONFIG_COMMAND")
    cs.required = True

    q = cs.add_parser("status", help="each device's desired and applied version and state, and recent pushes")
    q.add_argument("--config", "-c", type=Path, required=True, help="fleet.toml")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.add_argument("--history", type=int, default=5, metavar="N", help="recent pushes to show (default 5)")
    q.set_defaults(func=cmd_status)

    q = cs.add_parser("push", help="sign and push a fragment, canaries first; stop at K failures")
    q.add_argument("--config", "-c", type=Path, required=True, help="fleet.toml (broker, identity, signing_key)")
    _target_args(q)
    q.add_argument("--canary", type=int, default=0, metavar="N", help="push to N devices first, go on when they "
                                                                      "report applied")
    q.add_argument("--max-failures", type=int, default=1, metavar="K",
                   help="stop when K devices refuse or roll back (default 1; 0 = never stop)")
    q.add_argument("--wait", type=float, default=180.0, metavar="S",
                   help="seconds to wait for each wave's reports (default 180: the trial is 120)")
    q.add_argument("--version", type=int, default=None, help=argparse.SUPPRESS)
    q.add_argument("--abort", action="store_true", help="stop the rollout in progress (from another shell)")
    q.add_argument("--passphrase-fd", type=int, default=None, metavar="FD",
                   help="read the signing key's passphrase from this file descriptor (automation, tests)")
    q.add_argument("file", nargs="?", type=Path, metavar="FILE.toml", help="the config fragment")
    q.set_defaults(func=cmd_push)

    q = cs.add_parser("diff", help="what a push would change on each device, before it is sent")
    q.add_argument("--config", "-c", type=Path, required=True, help="fleet.toml")
    _target_args(q)
    q.add_argument("file", type=Path, metavar="FILE.toml", help="the config fragment")
    q.set_defaults(func=cmd_diff)


__all__ = ["add_config_parser", "ConfigError"]
