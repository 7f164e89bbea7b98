"""`labedge pki serve | revoke | crl`: renewal without a visit, and revocation (docs/fleet-operations.md)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from wire.identity import pki_errors


def cmd_pki_serve(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from facility.renewal import RenewalService, load_renewal_config
    from wire.tls import TransportError

    cfg = load_renewal_config(args.config)  # ConfigError -> one line, exit 2 (agent.cli)
    logging.basicConfig(level=cfg.log_level, force=True, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        service = RenewalService(cfg)
    except TransportError as exc:
        print(f"labedge pki serve: {exc}", file=sys.stderr)
        return 2
    return service.run(stop)


@pki_errors
def cmd_pki_revoke(args: argparse.Namespace) -> int:
    from facility.revocation import CRL_FILE, revoke
    if (args.name is None) == (args.cert is None):
        print("labedge pki revoke: give a NAME or --cert FILE (one of them)", file=sys.stderr)
        return 2
    new = revoke(args.ca, args.name, cert_file=args.cert, reason=args.reason)
    who = args.name or str(args.cert)
    print(f"revoked {len(new)} certificate(s) of {who}" + (f" (serial {', '.join(new)})" if new else
                                                          " (already revoked)"))
    print(f"CRL written: {Path(args.ca) / CRL_FILE}. Copy it to the broker's crlfile and send mosquitto "
          "SIGHUP: the device is refused at its next connect.")
    return 0


@pki_errors
def cmd_pki_crl(args: argparse.Namespace) -> int:
    from facility.revocation import revoked, write_crl
    out = write_crl(args.ca)
    print(f"CRL written: {out} ({len(revoked(args.ca))} revoked certificate(s))")
    return 0


def add_pki_commands(psub: Any) -> None:
    q = psub.add_parser("serve", help="the certificate renewal service: sign devices' renewal CSRs over MQTT")
    q.add_argument("--config", "-c", type=Path, required=True, help="TOML (config/schema/pki-serve.v1)")
    q.set_defaults(func=cmd_pki_serve)

    q = psub.add_parser("revoke", help="revoke a device's certificates (the broker's CRL refuses it)")
    q.add_argument("name", nargs="?", help="the device id (CN) whose unexpired certificates to revoke")
    q.add_argument("--ca", type=Path, required=True, help="CA directory from `labedge pki init`")
    q.add_argument("--cert", type=Path, help="revoke exactly this certificate file instead of a NAME")
    q.add_argument("--reason", default="", help="a note kept in revoked.json")
    q.set_defaults(func=cmd_pki_revoke)

    q = psub.add_parser("crl", help="(re)write the CA's CRL (crl.pem) for the broker's crlfile")
    q.add_argument("--ca", type=Path, required=True, help="CA directory from `labedge pki init`")
    q.set_defaults(func=cmd_pki_crl)
