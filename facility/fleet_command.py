"""`labedge fleet command --config fleet.toml DEVICE... ACTION [--reason R] [--wait S]`.

Each device gets its own signed envelope (target: that device only; its own id; an expiry), sent
as the administrator identity of fleet.toml on ``<prefix>/<device>/cmd/<id>``. With ``--wait`` the
results on ``<prefix>/<device>/cmd-result/<id>`` are printed, and the exit code is 1 if any device
failed, refused or did not answer in time. The signing key never leaves the administrator's
machine and is read with its passphrase (docs/fleet-operations.md).
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from facility.fleet_config import FleetConfig, load_fleet_config
from wire import commands as C
from wire import topics
from wire.link import Link, LinkSettings
from wire.protocol import DEVICE_RE, ProtocolError
from wire.reason_codes import NO_MATCHING_SUBSCRIBERS, NOT_AUTHORIZED
from wire.tls import TransportError, client_context

DEFAULT_EXPIRES = 600


@dataclass
class Sent:
    device: str
    cmd_id: str
    mid: int | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None       # the broker's verdict, if it was bad
    acked: bool = False

    @property
    def final(self) -> dict[str, Any] | None:
        return next((r for r in reversed(self.results) if r.get("status") in C.FINAL), None)


def result_line(s: Sent) -> tuple[str, bool]:
    """(the line printed for a device, whether it succeeded): the one place that words a result."""
    if s.problem:
        return f"{s.device}: NOT SENT: {s.problem}", False
    f = s.final
    if f is None:
        last = s.results[-1]["message"] if s.results else "no answer"
        return f"{s.device}: NO RESULT in time ({last}); the command expires unanswered or runs later", False
    tag = {"done": "done", "failed": "FAILED", "refused": "REFUSED"}[f["status"]]
    again = " (a replayed copy: nothing was done again)" if f.get("replayed") else ""
    return f"{s.device}: {tag}: {f.get('message', '')}{again}", f["status"] == "done"


def _signer(cfg: FleetConfig, fd: int | None) -> Any:
    from facility.keys import PassphraseSource, Signer
    if cfg.signing_key is None:
        raise ProtocolError(f"{cfg.source}: signing_key is not set: commands must be signed by an administrator "
                            "key (`labedge fleet keys init`)")
    return Signer.from_file(cfg.signing_key, PassphraseSource(fd))


def send_commands(cfg: FleetConfig, devices: list[str], action: str, args: dict[str, Any], *,
                  wait: float, expires: float, signer: Any) -> list[Sent]:
    sent = {d: Sent(d, C.new_command_id()) for d in devices}
    by_mid: dict[int, Sent] = {}

    def on_message(msg: mqtt.MQTTMessage) -> None:
        try:
            kind, device, cmd_id = topics.parse_fleet_topic(cfg.topic_prefix, msg.topic)
            body = C.parse_result(bytes(msg.payload))
        except ProtocolError:
            return
        s = sent.get(device)
        if kind == "cmd-result" and s is not None and cmd_id == s.cmd_id and body.get("device") == device:
            s.results.append(body)

    def on_puback(mid: int, reason: int) -> None:
        s = by_mid.get(mid)
        if s is None:
            return
        s.acked = True
        if reason == NO_MATCHING_SUBSCRIBERS:
            s.problem = ("no device of this name listens for commands at the broker (unknown device id, or "
                         "its agent never connected with remote commands)")
        elif reason == NOT_AUTHORIZED:
            s.problem = (f"the broker refused the command (0x87): the ACL must give {cfg.client_id!r} write on "
                         f"{cfg.topic_prefix}/+/cmd/#")
        elif reason >= 0x80:
            s.problem = f"the broker refused the command (reason {reason:#x})"

    subs = [(topics.command_result_filter(cfg.topic_prefix, d), 1) for d in devices]
    link = Link(LinkSettings(host=cfg.host, port=cfg.port, client_id=cfg.client_id, ca_file=cfg.ca_file,
                             cert_file=cfg.cert_file, key_file=cfg.key_file, keepalive=30, session_expiry=0,
                             clean_start=True, subscriptions=subs, connect_timeout=10.0),
                client_context(cfg.ca_file, cfg.cert_file, cfg.key_file), on_message=on_message,
                on_puback=on_puback)
    link.connect_once()
    try:
        for d, s in sent.items():
            payload = C.command_payload(s.cmd_id, action, args)
            data = signer.bundle(C.KIND, payload, version=int(time.time() * 1000), targets={"devices": [d]},
                                 valid_for=timedelta(seconds=expires))
            s.mid = link.publish(topics.command_topic(cfg.topic_prefix, d, s.cmd_id), data)
            if s.mid is None:
                s.problem = "the connection to the broker could not take the message"
            else:
                by_mid[s.mid] = s
        deadline = time.monotonic() + max(wait, 2.0)  # PUBACKs come back even without --wait
        while time.monotonic() < deadline:
            if not link.loop(timeout=0.05):
                raise TransportError(link.last_error or "the connection to the broker was lost")
            pending = [s for s in sent.values() if not s.problem and (s.final is None if wait else not s.acked)]
            if not pending:
                break
        failures = link.subscription_failures()
        if failures and wait:
            raise ProtocolError(f"the broker refused the result subscription ({', '.join(failures)}): the ACL must "
                                f"give {cfg.client_id!r} read on {cfg.topic_prefix}/+/cmd-result/#")
    finally:
        link.close()
    return list(sent.values())


def cmd_command(args: argparse.Namespace) -> int:
    cfg = load_fleet_config(args.config)  # ConfigError -> one line, exit 2 (agent.cli)
    bad = [d for d in args.devices if not DEVICE_RE.match(d) or d in topics.RESERVED_DEVICE_IDS]
    if bad:
        print(f"labedge fleet command: not a device id: {', '.join(map(repr, bad))}", file=sys.stderr)
        return 2
    if args.action == "pause" and not args.reason:
        print("labedge fleet command: pause needs --reason (the PC's tray and local page show it)", file=sys.stderr)
        return 2
    cmd_args = {"reason": args.reason} if args.reason else {}
    try:
        C.check_payload(C.command_payload("x", args.action, cmd_args), "x")
        signer = _signer(cfg, args.passphrase_fd)
        results = send_commands(cfg, list(dict.fromkeys(args.devices)), args.action, cmd_args, wait=args.wait or 0,
                                expires=args.expires, signer=signer)
    except (ProtocolError, TransportError) as exc:
        print(f"labedge fleet command: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - key errors (KeysError/PKIError) in words, never a traceback
        from wire.identity import PKIError
        if isinstance(exc, PKIError):
            print(f"labedge fleet command: {exc}", file=sys.stderr)
            return 2
        raise
    ok_all = True
    for s in results:
        if args.wait or s.problem:
            line, ok = result_line(s)
        else:
            line, ok = f"{s.device}: sent command {s.cmd_id} ({args.action}); see the result with --wait", True
        ok_all &= ok
        print(line)
    return 0 if ok_all else 1


def add_fleet_parser(fleet_sub: Any) -> None:
    p = fleet_sub.add_parser("command", help="send a signed command to devices (retry, pause, resume, rescan, "
                             "diagnostics, renew-certificate)",
                             description="Each device gets its own signed command with an id and an expiry. "
                                         "See docs/fleet-operations.md.")
    p.add_argument("--config", "-c", type=Path, required=True, help="fleet.toml (config/schema/fleet.v1)")
    p.add_argument("devices", nargs="+", metavar="DEVICE", help="device ids (certificate CNs)")
    p.add_argument("action", choices=C.ACTIONS, metavar="ACTION", help=" | ".join(C.ACTIONS))
    p.add_argument("--reason", default="", help="why (pause needs one; the PC's tray and local page show it)")
    p.add_argument("--wait", type=float, default=0, metavar="S",
                   help="wait up to S seconds for every result; exit 1 if any failed or timed out")
    p.add_argument("--expires", type=float, default=DEFAULT_EXPIRES, metavar="S",
                   help="the command expires S seconds from now (default %(default)s); devices refuse it later")
    p.add_argument("--passphrase-fd", type=int, default=None, metavar="FD",
                   help="read the signing key's passphrase from this file descriptor (automation)")
    p.set_defaults(func=cmd_command)

