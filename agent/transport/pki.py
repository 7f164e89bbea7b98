"""A small PKI for tests, demos and small sites: EC P-256 CA, device and server certificates.

Device identity is the certificate's CN: the broker maps it to the MQTT username
(``use_identity_as_username``) and the ACL lets a device write only under ``rde/<CN>/``.
So a CN must be safe inside a topic and an ACL pattern: only ``[A-Za-z0-9._-]``.

Private keys are written owner-only (0600) and never overwritten silently.
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.package.copying import write_fully

#: Characters allowed in a device/receiver CN: anything else could break MQTT topics
#: ('/', '+', '#'), ACL patterns ('%', spaces) or file names at the receiver.
CN_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

CA_CERT = "ca.pem"
CA_KEY = "ca.key"


class PKIError(Exception):
    """A PKI operation failed because of the user's input; the message says which file/field."""


# ---------------------------------------------------------------- helpers

def check_cn(cn: str, *, what: str = "certificate name (CN)") -> str:
    if not isinstance(cn, str) or not CN_RE.match(cn) or cn in (".", ".."):
        raise PKIError(f"{what} {cn!r} is not allowed: use 1-64 characters from A-Z a-z 0-9 . _ - "
                       "(it becomes part of MQTT topics and broker ACL patterns)")
    return cn


def _now() -> datetime:
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


def _write_public(path: Path, data: bytes, *, force: bool = True) -> None:
    if path.exists() and not force:
        raise PKIError(f"{path} already exists; refusing to overwrite it (use --force)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_ca(ca_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_dir = Path(ca_dir)
    cert_p, key_p = ca_dir / CA_CERT, ca_dir / CA_KEY
    if not ca_dir.is_dir():
        raise PKIError(f"CA directory {ca_dir} does not exist (create one with `labedge pki init --out {ca_dir}`)")
    for p in (cert_p, key_p):
        if not p.is_file():
            raise PKIError(f"{p} is missing: {ca_dir} is not a CA directory made by `labedge pki init`")
    try:
        cert = x509.load_pem_x509_certificate(cert_p.read_bytes())
    except (ValueError, OSError) as exc:
        raise PKIError(f"{cert_p}: not a readable PEM certificate ({exc})") from None
    try:
        key = serialization.load_pem_private_key(key_p.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as exc:
        raise PKIError(f"{key_p}: not a readable unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PKIError(f"{key_p}: expected an EC private key")
    return cert, key


def _cn_of(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else None


def _validity(days: int, not_before: datetime | None, not_after: datetime | None) -> tuple[datetime, datetime]:
    nb = not_before or (_now() - _dt.timedelta(minutes=5))  # tolerate small clock skew
    na = not_after or (nb + _dt.timedelta(days=days))
    if na <= nb:
        raise PKIError(f"certificate validity is empty: not_after {na} is not after not_before {nb}")
    return nb, na


# ---------------------------------------------------------------- API

def init_ca(out_dir: Path, cn: str = "labedge CA", days: int = 3650, *, force: bool = False) -> Path:
    """Create a self-signed EC P-256 CA: ``out_dir/ca.pem`` and ``out_dir/ca.key`` (0600)."""
    out_dir = Path(out_dir)
    if (out_dir / CA_KEY).exists() and not force:
        raise PKIError(f"{out_dir / CA_KEY} already exists; refusing to replace a CA (use --force)")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    nb, na = _validity(days, None, None)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(nb).not_valid_after(na)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    write_private(out_dir / CA_KEY, _key_pem(key), force=True)
    _write_public(out_dir / CA_CERT, cert.public_bytes(serialization.Encoding.PEM))
    return out_dir


def _build_leaf(ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, name: str,
                public_key: Any, *, server: bool, san: list[str] | None,
                not_before: datetime, not_after: datetime) -> x509.Certificate:
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
         .issuer_name(ca_cert.subject).public_key(public_key)
         .serial_number(x509.random_serial_number())
         .not_valid_before(not_before).not_valid_after(not_after)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=True, key_agreement=True, content_commitment=False,
                                      key_encipherment=False, data_encipherment=False, key_cert_sign=False,
                                      crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                               else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    if server:
        names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        for s in san or []:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(s)))
            except ValueError:
                names.append(x509.DNSName(s))
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    elif san:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in san]), critical=False)
    return b.sign(ca_key, hashes.SHA256())


def issue(ca_dir: Path, name: str, out_dir: Path, *, days: int = 365, server: bool = False,
          san: list[str] | None = None, not_before: datetime | None = None,
          not_after: datetime | None = None, force: bool = False) -> tuple[Path, Path]:
    """Make a key pair and a certificate signed by the CA: ``<name>.pem``, ``<name>.key`` (0600).

    Devices get clientAuth; ``server=True`` gives serverAuth with SAN localhost + 127.0.0.1 (+ ``san``).
    ``not_before``/``not_after`` override the validity (tests make expired certificates with them).
    """
    check_cn(name)
    ca_cert, ca_key = _load_ca(ca_dir)
    out_dir = Path(out_dir)
    key_p, cert_p = out_dir / f"{name}.key", out_dir / f"{name}.pem"
    if key_p.exists() and not force:
        raise PKIError(f"{key_p} already exists; refusing to overwrite a private key (use --force)")
    nb, na = _validity(days, not_before, not_after)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _build_leaf(ca_cert, ca_key, name, key.public_key(), server=server, san=san,
                       not_before=nb, not_after=na)
    write_private(key_p, _key_pem(key), force=True)
    _write_public(cert_p, cert.public_bytes(serialization.Encoding.PEM))
    return cert_p, key_p


def make_key_and_csr(name: str, out_dir: Path, *, force: bool = False) -> tuple[Path, Path]:
    """Enrollment on the PC: a new key (0600, never leaves the PC) and a CSR to send to the admin.

    Returns ``(key_path, csr_path)``.
    """
    check_cn(name, what="device id (CN)")
    out_dir = Path(out_dir)
    key_p, csr_p = out_dir / f"{name}.key", out_dir / f"{name}.csr"
    if key_p.exists() and not force:
        raise PKIError(f"{key_p} already exists; refusing to overwrite this device's private key "
                       "(use --force only if you really want a new identity)")
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
           .sign(key, hashes.SHA256()))
    write_private(key_p, _key_pem(key), force=True)
    _write_public(csr_p, csr.public_bytes(serialization.Encoding.PEM))
    return key_p, csr_p


def sign_csr(ca_dir: Path, csr_path: Path, out_dir: Path, days: int = 365, *, force: bool = False) -> Path:
    """Sign a device CSR (clientAuth only) after checking its signature and CN. Returns ``<CN>.pem``."""
    csr_path = Path(csr_path)
    try:
        data = csr_path.read_bytes()
    except OSError as exc:
        raise PKIError(f"{csr_path}: cannot read CSR ({exc.strerror or exc})") from None
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError:
        try:
            csr = x509.load_der_x509_csr(data)
        except ValueError:
            raise PKIError(f"{csr_path}: not a certificate signing request (expected PEM "
                           "'-----BEGIN CERTIFICATE REQUEST-----' from `labedge enroll`)") from None
    try:
        ok = csr.is_signature_valid
    except (InvalidSignature, ValueError):
        ok = False
    if not ok:
        raise PKIError(f"{csr_path}: the CSR's signature does not match its public key (corrupt or tampered)")
    cn = _cn_of(csr.subject)
    if cn is None:
        raise PKIError(f"{csr_path}: the CSR has no CN (common name); it must be the device id")
    check_cn(cn, what=f"{csr_path}: CN")
    pub = csr.public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey) or pub.curve.name != "secp256r1":
        raise PKIError(f"{csr_path}: CN {cn!r}: only EC P-256 keys are accepted (as `labedge enroll` makes)")
    ca_cert, ca_key = _load_ca(ca_dir)
    out_dir = Path(out_dir)
    cert_p = out_dir / f"{cn}.pem"
    if cert_p.exists() and not force:
        raise PKIError(f"{cert_p} already exists; refusing to overwrite it (use --force)")
    nb, na = _validity(days, None, None)
    # Extensions requested in the CSR are ignored on purpose: the CA decides (clientAuth, no SAN).
    cert = _build_leaf(ca_cert, ca_key, cn, pub, server=False, san=None, not_before=nb, not_after=na)
    _write_public(cert_p, cert.public_bytes(serialization.Encoding.PEM))
    return cert_p


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
    left = (na - _now()).total_seconds() / 86400.0
    return {"cn": _cn_of(cert.subject), "issuer": _cn_of(cert.issuer) or cert.issuer.rfc4514_string(),
            "not_before": nb.isoformat(), "not_after": na.isoformat(),
            "days_left": int(left // 1), "expired": left < 0,
            "serial": format(cert.serial_number, "x")}


#: `labedge status` warns this many days before the device certificate expires.
CERT_WARN_DAYS = 30


def certificate_status(cert_file: Path, device_id: str | None = None,
                       warn_days: int = CERT_WARN_DAYS) -> dict[str, Any]:
    """What `labedge status` shows about the device certificate; ``warning`` is a plain sentence or None."""
    out: dict[str, Any] = {"file": str(cert_file), "warning": None}
    try:
        info = cert_info(cert_file)
    except PKIError as exc:
        out["warning"] = f"cannot read the device certificate: {exc}"
        return out
    out.update(info)
    day = info["not_after"][:10]
    if info["expired"]:
        out["warning"] = (f"the device certificate {cert_file} EXPIRED on {day}: the broker will refuse this PC; "
                          "renew it (labedge enroll, then the facility signs the new CSR)")
    elif info["days_left"] < warn_days:
        out["warning"] = (f"the device certificate {cert_file} expires in {info['days_left']} days (on {day}); "
                          "renew it soon (labedge enroll --force, then the facility signs the new CSR)")
    elif device_id is not None and info["cn"] != device_id:
        out["warning"] = (f"the device certificate's CN {info['cn']!r} differs from device_id {device_id!r}: "
                          "the broker ACL will refuse every upload")
    return out
