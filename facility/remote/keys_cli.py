"""`labedge fleet keys init|add-admin|revoke-admin|rotate-root`: the key ceremony (docs/remote-config.md)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from wire.identity import pki_errors


def _source(args: argparse.Namespace) -> Any:
    from facility.keys import PassphraseSource
    return PassphraseSource(args.passphrase_fd)


@pki_errors
def cmd_keys_init(args: argparse.Namespace) -> int:
    from facility.keys import init_keys, load_public
    from wire import signed
    f = init_keys(args.out, _source(args), admin_name=args.admin_name, days=args.days, force=args.force)
    print(f"root key:        {f.root_key} (owner-only, encrypted: move it OFFLINE after this ceremony)")
    print(f"root public key: {f.root_pub} (pin it on every device: [remote] trust_root)")
    print(f"signing key:     {f.admin_key(args.admin_name)} (owner-only, encrypted: fleet.toml signing_key)")
    print(f"key list:        {f.admin_list_file} (root-signed, version 1, valid {args.days} days)")
    print(f"root key id:     {signed.key_id(load_public(f.root_pub))}")
    return 0


@pki_errors
def cmd_keys_add(args: argparse.Namespace) -> int:
    from facility.keys import KeysFolder, add_admin
    folder = KeysFolder(args.keys)
    kid = add_admin(folder, args.name, _source(args), public_key=args.public_key, days=args.days)
    print(f"added administrator {args.name!r} (key {kid}); key list now version {folder.admin_list()['version']}")
    print("devices take the new list with the next document they receive")
    return 0


@pki_errors
def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from facility.keys import KeysFolder, revoke_admin
    folder = KeysFolder(args.keys)
    kid = revoke_admin(folder, args.name, _source(args), days=args.days)
    print(f"revoked {args.name!r} (key {kid}); key list now version {folder.admin_list()['version']}")
    print("devices refuse that key once they hold this list: push any document (or `fleet config push`) to send it")
    return 0


@pki_errors
def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from facility.keys import KeysFolder, rotate_root
    folder = KeysFolder(args.keys)
    v = rotate_root(folder, _source(args), days=args.days)
    print(f"root rotated to version {v}: {folder.root_pub} (signed by the old root and by itself)")
    print(f"the old root's files are kept beside it; devices follow {folder.chain_file} with the next document")
    return 0


def _common(q: argparse.ArgumentParser) -> None:
    q.add_argument("--passphrase-fd", type=int, default=None, metavar="FD",
                   help="read passphrases (one line each, in the order asked; no confirmation line) from this file descriptor "
                        "instead of the terminal; for automation and tests")
    q.add_argument("--days", type=int, default=365, help="validity of the signed key list (default: %(default)s)")


def add_keys_parser(fleet_sub: Any) -> None:
    """Register `keys ...` under the `labedge fleet` group."""
    p = fleet_sub.add_parser("keys", help="root and administrator signing keys (remote config and commands)",
                             description="The key ceremony: an offline root key signs the list of administrator "
                                         "keys; administrators sign configs and commands. See docs/remote-config.md.")
    ks = p.add_subparsers(dest="keys_command", metavar="KEYS_COMMAND")
    ks.required = True
    q = ks.add_parser("init", help="make the root key, an administrator key and the signed key list")
    q.add_argument("--out", type=Path, required=True, help="keys folder (made owner-only)")
    q.add_argument("--admin-name", default="admin", help="the first administrator's name (default: %(default)s)")
    q.add_argument("--force", action="store_true", help="replace existing keys in --out")
    _common(q)
    q.set_defaults(func=cmd_keys_init)
    q = ks.add_parser("add-admin", help="add an administrator key and re-sign the list with the root")
    q.add_argument("--keys", type=Path, required=True, help="keys folder from `fleet keys init`")
    q.add_argument("--name", required=True, help="the administrator's name (shown in audit logs)")
    q.add_argument("--public-key", type=Path, default=None,
                   help="their own public key (PEM); without it a new key pair is made in the folder")
    _common(q)
    q.set_defaults(func=cmd_keys_add)
    q = ks.add_parser("revoke-admin", help="revoke an administrator key and re-sign the list with the root")
    q.add_argument("--keys", type=Path, required=True, help="keys folder from `fleet keys init`")
    q.add_argument("--name", required=True, help="the administrator's name or key id")
    _common(q)
    q.set_defaults(func=cmd_keys_revoke)
    q = ks.add_parser("rotate-root", help="make a new root key, signed by the old one and by itself (N+1)")
    q.add_argument("--keys", type=Path, required=True, help="keys folder from `fleet keys init`")
    _common(q)
    q.set_defaults(func=cmd_keys_rotate)
