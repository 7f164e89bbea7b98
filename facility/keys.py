"""The facility's signing keys: an offline root, administrator keys, and the root-signed key list.

A keys folder (``labedge fleet keys init --out DIR``) holds::

    root.key            the root's private key (encrypted, owner-only): keep it OFFLINE
    root.pub            the root public key: pin it on every device ([remote] trust_root)
    root-chain.json     root rotations so far (each signed by the root before it and by itself)
    admin-keys.json     the administrator key list, signed by the root (version, expiry)
    admin-NAME.key      an administrator's signing key (encrypted, owner-only)
    admin-NAME.pub

Passphrases are prompted for (getpass). Tests and automation may give them through a file
descriptor (``--passphrase-fd``) or the environment variables ``LABEDGE_ROOT_PASSPHRASE`` and
``LABEDGE_SIGNING_PASSPHRASE``; never as a command-line value, which other users can read in the
process list.
"""
from __future__ import annotations

import getpass
import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from wire import signed
from wire.identity import PKIError, check_cn, write_private, write_public

ROOT_ENV = "LABEDGE_ROOT_PASSPHRASE"
SIGNING_ENV = "LABEDGE_SIGNING_PASSPHRASE"
MIN_PASSPHRASE = 8
ADMIN_LIST_DAYS = 365


class KeysError(PKIError):
    """A key operation failed; the message names the file and what to do."""


# ------------------------------------------------------------------------------ passphrases
class PassphraseSource:
    """Where passphrases come from: the terminal, or (tests/automation) a file descriptor or env."""

    def __init__(self, fd: int | None = None) -> None:
        self._lines: list[str] | None = None
        self._fd = fd

    def get(self, prompt: str, *, env: str, confirm: bool = False) -> bytes:
        if self._fd is not None:
            if self._lines is None:  # one passphrase per line, in the order they are asked for
                with os.fdopen(self._fd, "r", encoding="utf-8", closefd=True) as f:
                    self._lines = f.read().splitlines()
            if not self._lines:
                raise KeysError(f"--passphrase-fd {self._fd}: no line left for: {prompt}")
            value = self._lines.pop(0)
        elif os.environ.get(env):
            value = os.environ[env]
        else:
            try:
                value = getpass.getpass(f"{prompt}: ")
                if confirm and getpass.getpass(f"{prompt} (again): ") != value:
                    raise KeysError("the two passphrases differ")
            except EOFError:
                raise KeysError(f"no terminal to ask for: {prompt} (use --passphrase-fd)") from None
        if confirm and len(value) < MIN_PASSPHRASE:
            raise KeysError(f"{prompt}: use at least {MIN_PASSPHRASE} characters")
        return value.encode("utf-8")


# ------------------------------------------------------------------------------ key files
def save_private(path: Path, key: Ed25519PrivateKey, passphrase: bytes, *, force: bool = False) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(passphrase))
    write_private(path, pem, force=force)


def load_private(path: Path, passphrase: bytes) -> Ed25519PrivateKey:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeysError(f"{path}: cannot read the key ({exc.strerror or exc})") from None
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise KeysError(f"{path}: other users can read this private key; run chmod 600 {path}")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except (ValueError, TypeError):
        raise KeysError(f"{path}: wrong passphrase, or not a labedge signing key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeysError(f"{path}: not an Ed25519 key")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    path = Path(path)
    try:
        return signed.load_public_pem(path.read_bytes(), what=str(path))
    except OSError as exc:
        raise KeysError(f"{path}: cannot read the public key ({exc.strerror or exc})") from None
    except signed.SignedError as exc:
        raise KeysError(exc.reason) from None


def _read_json(path: Path, default: Any) -> Any:
    if not path.exists():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KeysError(f"{path}: cannot read ({exc})") from None


def _write_json(path: Path, obj: Any) -> None:
    write_public(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8"))


# ------------------------------------------------------------------------------ the keys folder
@dataclass
class KeysFolder:
    path: Path

    @property
    def root_key(self) -> Path:
        return self.path / "root.key"

    @property
    def root_pub(self) -> Path:
        return self.path / "root.pub"

    @property
    def chain_file(self) -> Path:
        return self.path / "root-chain.json"

    @property
    def admin_list_file(self) -> Path:
        return self.path / "admin-keys.json"

    def admin_key(self, name: str) -> Path:
        return self.path / f"admin-{name}.key"

    def admin_pub(self, name: str) -> Path:
        return self.path / f"admin-{name}.pub"

    def admin_list(self) -> dict[str, Any]:
        doc = _read_json(self.admin_list_file, None)
        if not isinstance(doc, dict):
            raise KeysError(f"{self.admin_list_file}: missing; run `labedge fleet keys init --out {self.path}`")
        return doc

    def chain(self) -> list[dict[str, Any]]:
        return list(_read_json(self.chain_file, []))


def _sign_admin_list(folder: KeysFolder, root: Ed25519PrivateKey, keys: list[dict[str, str]],
                     revoked: list[dict[str, str]], version: int, days: int) -> dict[str, Any]:
    env = signed.make_envelope(signed.KIND_ADMIN_KEYS, {"keys": keys, "revoked": revoked}, version=version,
                               valid_for=timedelta(days=days))
    doc = signed.sign(env, root)
    _write_json(folder.admin_list_file, doc)
    return doc


def init_keys(out: Path, pw: PassphraseSource, *, admin_name: str = "admin", days: int = ADMIN_LIST_DAYS,
              force: bool = False) -> KeysFolder:
    check_cn(admin_name, what="administrator name")
    folder = KeysFolder(Path(out))
    if folder.root_key.exists() and not force:
        raise KeysError(f"{folder.root_key} already exists; refusing to replace a root key (use --force)")
    root_pw = pw.get("Passphrase for the NEW ROOT key (keep it offline)", env=ROOT_ENV, confirm=True)
    admin_pw = pw.get(f"Passphrase for the administrator signing key {admin_name!r}", env=SIGNING_ENV, confirm=True)
    folder.path.mkdir(parents=True, exist_ok=True)
    os.chmod(folder.path, 0o700)
    root, admin = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    save_private(folder.root_key, root, root_pw, force=force)
    write_public(folder.root_pub, signed.public_pem(root.public_key()))
    save_private(folder.admin_key(admin_name), admin, admin_pw, force=force)
    write_public(folder.admin_pub(admin_name), signed.public_pem(admin.public_key()))
    _write_json(folder.chain_file, [])
    _sign_admin_list(folder, root, [{"name": admin_name, "public_key": signed.public_b64(admin.public_key())}],
                     [], 1, days)
    return folder


def add_admin(folder: KeysFolder, name: str, pw: PassphraseSource, *, public_key: Path | None = None,
              days: int = ADMIN_LIST_DAYS) -> str:
    """Add an administrator (a new key made here, or their own public key); re-sign the list."""
    check_cn(name, what="administrator name")
    doc = folder.admin_list()
    keys, revoked = list(doc["payload"]["keys"]), list(doc["payload"].get("revoked", []))
    if any(k["name"] == name for k in keys):
        raise KeysError(f"administrator {name!r} is already in {folder.admin_list_file}")
    root = load_private(folder.root_key, pw.get("Passphrase for the root key", env=ROOT_ENV))
    if public_key is not None:
        pub = load_public(public_key)
    else:
        key = Ed25519PrivateKey.generate()
        save_private(folder.admin_key(name), key,
                     pw.get(f"Passphrase for the new signing key {name!r}", env=SIGNING_ENV, confirm=True))
        pub = key.public_key()
    write_public(folder.admin_pub(name), signed.public_pem(pub))
    if signed.key_id(pub) in {r["key_id"] for r in revoked}:
        raise KeysError(f"that key was revoked before; make a new one for {name!r}")
    keys.append({"name": name, "public_key": signed.public_b64(pub)})
    _sign_admin_list(folder, root, keys, revoked, doc["version"] + 1, days)
    return signed.key_id(pub)


def revoke_admin(folder: KeysFolder, name: str, pw: PassphraseSource, *, days: int = ADMIN_LIST_DAYS) -> str:
    doc = folder.admin_list()
    keys, revoked = list(doc["payload"]["keys"]), list(doc["payload"].get("revoked", []))
    match = [k for k in keys if k["name"] == name or signed.key_id(signed.public_from_b64(k["public_key"])) == name]
    if not match:
        raise KeysError(f"no administrator {name!r} in {folder.admin_list_file}")
    root = load_private(folder.root_key, pw.get("Passphrase for the root key", env=ROOT_ENV))
    k = match[0]
    kid = signed.key_id(signed.public_from_b64(k["public_key"]))
    keys.remove(k)
    revoked.append({"name": k["name"], "key_id": kid})
    _sign_admin_list(folder, root, keys, revoked, doc["version"] + 1, days)
    return kid


def rotate_root(folder: KeysFolder, pw: PassphraseSource, *, days: int = ADMIN_LIST_DAYS) -> int:
    """Make root N+1, signed by root N and by itself; re-sign the admin list with the new root."""
    old = load_private(folder.root_key, pw.get("Passphrase for the CURRENT root key", env=ROOT_ENV))
    new_pw = pw.get("Passphrase for the NEW root key", env=ROOT_ENV, confirm=True)
    chain = folder.chain()
    version = len(chain) + 2  # root 1 needs no document
    new = Ed25519PrivateKey.generate()
    payload = {"public_key": signed.public_b64(new.public_key()),
               "self_signature": signed.root_self_signature(new, version)}
    # a rotation must reach devices that were offline for months: long validity, checked only for not_before
    doc = signed.sign(signed.make_envelope(signed.KIND_ROOT, payload, version=version,
                                           valid_for=timedelta(days=3650)), old)
    # keep the old root's files: a device pinned to it needs the chain, and a mistake needs undoing
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    os.replace(folder.root_key, folder.path / f"root-{version - 1}-{stamp}.key")
    os.replace(folder.root_pub, folder.path / f"root-{version - 1}-{stamp}.pub")
    save_private(folder.root_key, new, new_pw)
    write_public(folder.root_pub, signed.public_pem(new.public_key()))
    _write_json(folder.chain_file, chain + [doc])
    lst = folder.admin_list()
    _sign_admin_list(folder, new, lst["payload"]["keys"], lst["payload"].get("revoked", []),
                     lst["version"] + 1, days)
    return version


# ------------------------------------------------------------------------------ signing
class Signer:
    """An administrator's key plus the trust documents that go with everything it signs."""

    def __init__(self, key: Ed25519PrivateKey, admin_keys: dict[str, Any], roots: list[dict[str, Any]]) -> None:
        self.key, self.admin_keys, self.roots = key, admin_keys, roots
        self.key_id = signed.key_id(key)
        names = [k["name"] for k in admin_keys["payload"]["keys"]
                 if signed.key_id(signed.public_from_b64(k["public_key"])) == self.key_id]
        self.name = names[0] if names else "?"

    @classmethod
    def from_file(cls, key_file: Path, pw: PassphraseSource, *, keys_dir: Path | None = None) -> "Signer":
        """Load ``admin-NAME.key``; the key list and root chain are read from its folder (or keys_dir)."""
        key_file = Path(key_file)
        folder = KeysFolder(Path(keys_dir) if keys_dir else key_file.parent)
        key = load_private(key_file, pw.get(f"Passphrase for the signing key {key_file}", env=SIGNING_ENV))
        return cls(key, folder.admin_list(), folder.chain())

    def envelope(self, kind: str, payload: Any, *, version: int, targets: dict[str, Any],
                 valid_for: timedelta = timedelta(days=7)) -> dict[str, Any]:
        return signed.sign(signed.make_envelope(kind, payload, version=version, targets=targets,
                                                valid_for=valid_for), self.key)

    def bundle(self, kind: str, payload: Any, *, version: int, targets: dict[str, Any],
               valid_for: timedelta = timedelta(days=7)) -> bytes:
        return signed.bundle(self.envelope(kind, payload, version=version, targets=targets, valid_for=valid_for),
                             admin_keys=self.admin_keys, roots=self.roots)
