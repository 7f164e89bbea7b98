"""Facility subcommands: `receive` (the reference receiver) and `pki init/issue/sign-csr` (the CA).

Every user error becomes one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from wire.identity import pki_errors


def cmd_receive(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from facility.receiver import Receiver
    from facility.receiver_config import load_receiver_config
    from wire.receipt import ReceiptError
    from wire.tls import TransportError

    cfg = load_receiver_config(args.config)  # ConfigError -> one line, exit 2 (agent.cli)
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if cfg.log_file is not None:
        cfg.log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(cfg.log_file, encoding="utf-8"))
    logging.basicConfig(level=cfg.log_level, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("bagit").setLevel(logging.WARNING)  # one line per verified file is noise here
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        receiver = Receiver(cfg)
    except TransportError as exc:
        print(f"labedge receive: {exc}", file=sys.stderr)
        return 2
    except ReceiptError as exc:
        print(f"labedge receive: cert_file {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"labedge receive: store_dir {cfg.store_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return receiver.run(stop)


def _add_receive(sub: Any) -> None:
    p = sub.add_parser("receive", help="the reference receiver (facility side): verify, store, ack",
                       description="Subscribe (shared subscription) to device uploads, reassemble packages on "
                                   "disk, verify every sha256 and the bag, store atomically, fsync, then ack. "
                                   "See docs/protocol.md.")
    p.add_argument("--config", "-c", type=Path, required=True, help="receiver TOML (config/schema/receiver.v1)")
    p.set_defaults(func=cmd_receive)


@pki_errors
def cmd_pki_init(args: argparse.Namespace) -> int:
    from facility.pki import init_ca
    out = init_ca(args.out, cn=args.cn, days=args.days, force=args.force)
    print(f"CA created: {out / 'ca.pem'} (certificate: give it to brokers, receivers and devices)")
    print(f"            {out / 'ca.key'} (private key, owner-only: keep it off the instrument PCs)")
    return 0


@pki_errors
def cmd_pki_issue(args: argparse.Namespace) -> int:
    from facility.pki import cert_info, issue
    cert, key = issue(args.ca, args.name, args.out, days=args.days, server=args.server,
                      san=args.san or None, force=args.force, role=args.role)
    info = cert_info(cert)
    from wire.receipt import is_receiver_cert
    from cryptography import x509
    receiver = is_receiver_cert(x509.load_pem_x509_certificate(cert.read_bytes()))
    kind = "server (broker)" if args.server else "receiver" if receiver else "client (device)"
    print(f"issued {kind} certificate CN={info['cn']} valid until {info['not_after']}")
    print(f"  certificate: {cert}")
    print(f"  private key: {key} (owner-only)")
    return 0


@pki_errors
def cmd_pki_sign_csr(args: argparse.Namespace) -> int:
    from facility.pki import cert_info, sign_csr
    cert = sign_csr(args.ca, args.csr, args.out, days=args.days, force=args.force, replace=args.replace)
    info = cert_info(cert)
    print(f"signed CN={info['cn']} valid until {info['not_after']}: {cert}")
    print(f"send {cert} and {Path(args.ca) / 'ca.pem'} back to the PC (not the CA key).")
    return 0


def _add_pki(sub: Any) -> None:
    p = sub.add_parser("pki", help="a small CA for tests, demos and small sites (EC P-256)",
                       description="Make a CA, issue broker/device certificates, sign device CSRs.")
    psub = p.add_subparsers(dest="pki_command", metavar="PKI_COMMAND")
    psub.required = True

    q = psub.add_parser("init", help="create a CA (ca.pem + ca.key) in a directory")
    q.add_argument("--out", type=Path, required=True, help="directory for ca.pem and ca.key")
    q.add_argument("--cn", default="labedge CA", help="the CA's name (default: %(default)s)")
    q.add_argument("--days", type=int, default=3650, help="validity in days (default: %(default)s)")
    q.add_argument("--force", action="store_true", help="replace an existing CA in --out")
    q.set_defaults(func=cmd_pki_init)

    q = psub.add_parser("issue", help="issue a key and certificate (device, receiver or --server broker)")
    q.add_argument("--ca", type=Path, required=True, help="CA directory from `labedge pki init`")
    q.add_argument("--name", required=True, help="CN: the device id, receiver name or broker host")
    q.add_argument("--out", type=Path, required=True, help="directory for NAME.pem and NAME.key")
    q.add_argument("--days", type=int, default=365, help="validity in days (default: %(default)s)")
    q.add_argument("--server", action="store_true",
                   help="a broker certificate (serverAuth, SAN localhost and 127.0.0.1 plus --san)")
    q.add_argument("--san", action="append", default=[], metavar="HOST_OR_IP",
                   help="extra subject alternative name for --server (repeatable)")
    q.add_argument("--force", action="store_true", help="overwrite an existing NAME.key")
    q.add_argument("--role", choices=["device", "receiver", "server"], default=None,
                   help="receiver: adds the key usage devices require on signed 'stored' receipts "
                        "(default: receiver for names starting with labedge-receiver, else device)")
    q.set_defaults(func=cmd_pki_issue)

    q = psub.add_parser("sign-csr", help="sign a device's CSR from `labedge enroll`")
    q.add_argument("--ca", type=Path, required=True, help="CA directory from `labedge pki init`")
    q.add_argument("--csr", type=Path, required=True, help="the .csr file the device sent")
    q.add_argument("--out", type=Path, required=True, help="directory for CN.pem")
    q.add_argument("--days", type=int, default=365, help="validity in days (default: %(default)s)")
    q.add_argument("--force", action="store_true", help="overwrite an existing CN.pem")
    q.add_argument("--replace", action="store_true",
                   help="sign although this CN was already issued (the PC re-enrolled with a new key)")
    q.set_defaults(func=cmd_pki_sign_csr)

    from facility.pki_cli import add_pki_commands  # renewal service, revoke, crl
    add_pki_commands(psub)




def add_parser(sub: Any) -> None:
    _add_receive(sub)
    _add_pki(sub)
