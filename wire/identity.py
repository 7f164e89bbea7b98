"""Names and private keys, as both sides make them.

Device identity is the certificate's CN: the broker maps it to the MQTT username
(``use_identity_as_username``) and the ACL lets a device write only under ``rde/<CN>/``.
So a CN must be safe inside a topic and an ACL pattern: only ``[A-Za-z0-9._-]``.

Private keys are written owner-only (0600) and never overwritten silently.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.package.copying import write_fully

#: Characters allowed in a device/receiver CN: anything else could break MQTT topics
#: ('/', '+', '#'), ACL patterns ('%', spaces) or file names at the receiver.
CN_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class PKIError(Exception):
    """A PKI operation failed because of the user's input; the message says which file/field."""


def check_cn(cn: str, *, what: str = "certificate name (CN)") -> str:
    if not isinstance(cn, str) or not CN_RE.match(cn) or cn in (".", ".."):
        raise PKIError(f"{what} {cn!r} is not allowed: use 1-64 characters from A-Z a-z 0-9 . _ - "
                       "(it becomes part of MQTT topics and broker ACL patterns)")
    return cn


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _restrict_windows(path: Path) -> None:  # pragma: no cover - Windows only
    """Owner-only ACL on Windows: drop inherited ACEs, grant full control to the current user only."""
    user = os.environ.get("USERNAME", "")
    domain = os.environ.get("USERDOMAIN", "")
    who = f"{domain}\\{user}" if domain else user
    subprocess.run(["icacls", str(path), "/inheritance:r", "/grant:r", f"{who}:F"],
                   check=True, capture_output=True)


def write_private(path: Path, data: bytes, *, force: bool = False) -> None:
    """Write secret bytes so that no other user can ever read them (not even briefly)."""
    if path.exists() and not force:
        raise PKIError(f"{path} already exists; refusing to overwrite a private key (use --force)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        tmp.unlink()
    binary = getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | binary, 0o600)
    if sys.platform == "win32":  # pragma: no cover - lock the EMPTY file down before the key goes in
        os.close(fd)
        try:
            _restrict_windows(tmp)
        except (OSError, subprocess.CalledProcessError) as exc:
            tmp.unlink()
            raise PKIError(f"{path}: cannot make the key owner-only with icacls ({exc})") from None
        fd = os.open(tmp, os.O_WRONLY | binary)
    else:
        os.fchmod(fd, 0o600)  # umask can only narrow the mode, but be explicit
    try:
        write_fully(fd, data)  # never half a key on a nearly full disk
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_public(path: Path, data: bytes, *, force: bool = True) -> None:
    if path.exists() and not force:
        raise PKIError(f"{path} already exists; refusing to overwrite it (use --force)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cn_of(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else None


def cert_info(path: Path) -> dict[str, Any]:
    """CN, expiry, days left and issuer of a PEM certificate (first one in the file)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PKIError(f"{path}: cannot read certificate ({exc.strerror or exc})") from None
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise PKIError(f"{path}: not a PEM certificate") from None
    na = cert.not_valid_after_utc
    nb = cert.not_valid_before_utc
    left = (na - utc_now()).total_seconds() / 86400.0
    return {"cn": cn_of(cert.subject), "issuer": cn_of(cert.issuer) or cert.issuer.rfc4514_string(),
            "not_before": nb.isoformat(), "not_after": na.isoformat(),
            "days_left": int(left // 1), "expired": left < 0,
            "serial": format(cert.serial_number, "x")}


def pki_errors(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn PKIError (and file-system errors on the named paths) into one friendly line."""
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except PKIError as exc:
            print(f"labedge: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            print(f"labedge: {where}{exc.strerror or exc}", file=sys.stderr)
            return 2
    return run
