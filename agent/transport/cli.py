"""Device subcommand `enroll`: this PC's key and a CSR for the facility (the key never leaves the PC).

Every user error becomes one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from wire.identity import pki_errors


@pki_errors
def cmd_enroll(args: argparse.Namespace) -> int:
    from agent.transport.enroll import make_key_and_csr
    key, csr = make_key_and_csr(args.name, args.out, force=args.force)
    out = Path(args.out).resolve()
    cert = out / f"{args.name}.pem"
    print(f"Made this PC's private key {key} (owner-only; it never leaves this PC)")
    print(f"and a certificate request {csr}.")
    print()
    print("1. Send ONLY this file to the facility administrator:")
    print(f"     {csr}")
    print("   They sign it with:")
    print(f"     labedge pki sign-csr --ca CA_DIR --csr {csr.name} --out OUT_DIR")
    print(f"   and send back {args.name}.pem plus the facility's ca.pem.")
    print(f"2. Put both files in {out}")
    # the block below is pasted as is: device_id inside it would land in the last [[instruments]]
    print(f'3. In the config, device_id = "{args.name}" at the top, before any [section] (it must equal')
    print(f"   the certificate's CN; `labedge init --device-id {args.name}` writes it), and this section at")
    print("   the end of the file (or uncomment the [upload] lines `labedge init` wrote):")
    print("     [upload]")
    print(f'     broker = "mqtts://{args.broker}"')
    print(f'     ca_file = "{(out / "ca.pem").as_posix()}"')
    print(f'     cert_file = "{cert.as_posix()}"')
    print(f'     key_file = "{key.resolve().as_posix()}"')
    print("4. Check with: labedge check --config YOUR_CONFIG --online  (the broker accepts this certificate);")
    print("   labedge status --config YOUR_CONFIG shows the certificate and its expiry")
    return 0


def _add_enroll(sub: Any) -> None:
    p = sub.add_parser("enroll", help="make this PC's key and a CSR for the facility (the key stays here)",
                       description="Make an owner-only EC P-256 key and a certificate signing request. "
                                   "Send only the .csr to the facility administrator.")
    p.add_argument("--name", required=True, help="this PC's device id (becomes the certificate CN)")
    p.add_argument("--out", type=Path, required=True, help="directory for NAME.key and NAME.csr")
    p.add_argument("--broker", default="broker.example.org:8883",
                   help="facility broker host:port, for the printed config lines")
    p.add_argument("--force", action="store_true", help="replace an existing key (a new identity)")
    p.set_defaults(func=cmd_enroll)




def add_parser(sub: Any) -> None:
    _add_enroll(sub)
