"""A small PKI for tests, demos and small sites: EC P-256 CA, device, receiver and server certificates.

The CA's key stays at the facility. Devices make their own keys (`agent.transport.enroll`) and send
only a CSR, which `sign_csr` checks and signs.
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from wire.identity import PKIError, cert_info, check_cn, cn_of, key_pem, write_private, write_public
from wire.identity import utc_now
from wire.receipt import RECEIVER_EKU
from facility.revocation import record_issued

__all__ = ["CA_CERT", "CA_KEY", "PKIError", "cert_info", "init_ca", "issue", "sign_csr"]

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
#: Every certificate the CA issued, by lower-cased CN: `sign-csr` refuses a name twice (a second
#: device taking over a first one's topics and session) unless told --replace.
ISSUED_DIR = "issued"
#: Names for the facility's own identities (receivers, admin tools). A device's CSR may never carry
#: one: the broker ACL grants rights by name, so a device named labedge-receiver would be a receiver.
RESERVED_PREFIX = "labedge-"
ROLES = ("device", "receiver", "server")


def is_reserved(cn: str) -> bool:
    return cn.lower().startswith(RESERVED_PREFIX)


def _issued_path(ca_dir: Path, cn: str) -> Path:
    return Path(ca_dir) / ISSUED_DIR / f"{cn.lower()}.pem"


def _record_issued(ca_dir: Path, cn: str, cert: x509.Certificate) -> None:
    write_public(_issued_path(ca_dir, cn), cert.public_bytes(serialization.Encoding.PEM))


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


def _validity(days: int, not_before: datetime | None, not_after: datetime | None) -> tuple[datetime, datetime]:
    nb = not_before or (utc_now() - _dt.timedelta(minutes=5))  # tolerate small clock skew
    na = not_after or (nb + _dt.timedelta(days=days))
    if na <= nb:
        raise PKIError(f"certificate validity is empty: not_after {na} is not after not_before {nb}")
    return nb, na


def init_ca(out_dir: Path, cn: str = "labedge CA", days: int = 3650, *, force: bool = False) -> Path:
    """Create a self-signed EC P-256 CA: ``out_dir/ca.pem`` and ``out_dir/ca.key`` (0600)."""
    out_dir = Path(out_dir)
    if (out_dir / CA_KEY).exists() and not force:
        raise PKIError(f"{out_dir / CA_KEY} already exists; refusing to replace a CA (use --force)")
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(out_dir, 0o700)  # owner-only whatever the umask: the CA key and its issued/ list live here
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
    write_private(out_dir / CA_KEY, key_pem(key), force=True)
    write_public(out_dir / CA_CERT, cert.public_bytes(serialization.Encoding.PEM))
    from facility.revocation import write_crl
    write_crl(out_dir)  # the broker's crlfile must exist from day one (OpenSSL requires a CRL per CA)
    return out_dir


def _build_leaf(ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, name: str,
                public_key: Any, *, server: bool, san: list[str] | None,
                not_before: datetime, not_after: datetime, receiver: bool = False) -> x509.Certificate:
    usages = [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
    if receiver:  # what devices check on a signed "stored" receipt (wire/receipt.py)
        usages.append(RECEIVER_EKU)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
         .issuer_name(ca_cert.subject).public_key(public_key)
         .serial_number(x509.random_serial_number())
         .not_valid_before(not_before).not_valid_after(not_after)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=True, key_agreement=True, content_commitment=False,
                                      key_encipherment=False, data_encipherment=False, key_cert_sign=False,
                                      crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
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
          not_after: datetime | None = None, force: bool = False, role: str | None = None) -> tuple[Path, Path]:
    """Make a key pair and a certificate signed by the CA: ``<name>.pem``, ``<name>.key`` (0600).

    Devices get clientAuth; ``server=True`` gives serverAuth with SAN localhost + 127.0.0.1 (+ ``san``);
    ``role="receiver"`` (the default for names starting with ``labedge-receiver``) adds the receiver
    key usage devices require on "stored" receipts. Only the CA holder runs this.
    ``not_before``/``not_after`` override the validity (tests make expired certificates with them).
    """
    check_cn(name)
    if role is None:
        role = "server" if server else "receiver" if name.lower().startswith("labedge-receiver") else "device"
    if role not in ROLES:
        raise PKIError(f"role {role!r} is not one of {', '.join(ROLES)}")
    server = server or role == "server"
    ca_cert, ca_key = _load_ca(ca_dir)
    out_dir = Path(out_dir)
    key_p, cert_p = out_dir / f"{name}.key", out_dir / f"{name}.pem"
    if key_p.exists() and not force:
        raise PKIError(f"{key_p} already exists; refusing to overwrite a private key (use --force)")
    nb, na = _validity(days, not_before, not_after)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _build_leaf(ca_cert, ca_key, name, key.public_key(), server=server, san=san,
                       not_before=nb, not_after=na, receiver=role == "receiver")
    _record_issued(ca_dir, name, cert)
    write_private(key_p, key_pem(key), force=True)
    write_public(cert_p, cert.public_bytes(serialization.Encoding.PEM))
    record_issued(ca_dir, cert)
    return cert_p, key_p


def parse_csr(data: bytes, where: str) -> tuple[x509.CertificateSigningRequest, str]:
    """A device CSR (PEM or DER) whose signature, CN and key type are checked; returns (csr, CN)."""
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError:
        try:
            csr = x509.load_der_x509_csr(data)
        except ValueError:
            raise PKIError(f"{where}: not a certificate signing request (expected PEM "
                           "'-----BEGIN CERTIFICATE REQUEST-----' from `labedge enroll`)") from None
    try:
        ok = csr.is_signature_valid
    except (InvalidSignature, ValueError):
        ok = False
    if not ok:
        raise PKIError(f"{where}: the CSR's signature does not match its public key (corrupt or tampered)")
    cn = cn_of(csr.subject)
    if cn is None:
        raise PKIError(f"{where}: the CSR has no CN (common name); it must be the device id")
    check_cn(cn, what=f"{where}: CN")
    if is_reserved(cn):
        raise PKIError(f"{where}: CN {cn!r} is reserved for the facility's own identities "
                       f"(names starting with {RESERVED_PREFIX!r}); a device cannot be signed with it. "
                       "Issue receivers with `labedge pki issue --role receiver` on the CA host")
    pub = csr.public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey) or pub.curve.name != "secp256r1":
        raise PKIError(f"{where}: CN {cn!r}: only EC P-256 keys are accepted (as `labedge enroll` makes)")
    return csr, cn


def sign_parsed_csr(ca_dir: Path, csr: x509.CertificateSigningRequest, cn: str, days: int = 365) -> x509.Certificate:
    """Sign an already checked CSR as a device certificate (clientAuth) and record it in both indexes
    (by name: what sign-csr refuses twice; by serial: what revoke searches)."""
    ca_cert, ca_key = _load_ca(ca_dir)
    nb, na = _validity(days, None, None)
    # Extensions requested in the CSR are ignored on purpose: the CA decides (clientAuth, no SAN).
    cert = _build_leaf(ca_cert, ca_key, cn, csr.public_key(), server=False, san=None, not_before=nb, not_after=na)
    _record_issued(ca_dir, cn, cert)
    record_issued(ca_dir, cert)
    return cert


def sign_csr(ca_dir: Path, csr_path: Path, out_dir: Path, days: int = 365, *, force: bool = False,
             replace: bool = False) -> Path:
    """Sign a device CSR (clientAuth only) after checking its signature and CN. Returns ``<CN>.pem``.

    Refuses reserved names (``labedge-*``: receivers, admin tools) always, and a name the CA has
    already issued unless ``replace`` (re-enrolling a PC whose key was lost or stolen)."""
    csr_path = Path(csr_path)
    try:
        data = csr_path.read_bytes()
    except OSError as exc:
        raise PKIError(f"{csr_path}: cannot read CSR ({exc.strerror or exc})") from None
    csr, cn = parse_csr(data, str(csr_path))
    _load_ca(ca_dir)  # a missing CA is the first thing to say
    issued = _issued_path(ca_dir, cn)
    if issued.exists() and not replace:
        raise PKIError(f"{csr_path}: a certificate for CN {cn!r} was already issued ({issued}); signing another "
                       "would let a second machine use that device's topics and session. If this PC "
                       "re-enrolled (lost or stolen key), sign with --replace")
    out_dir = Path(out_dir)
    cert_p = out_dir / f"{cn}.pem"
    if cert_p.exists() and not force:
        raise PKIError(f"{cert_p} already exists; refusing to overwrite it (use --force)")
    cert = sign_parsed_csr(ca_dir, csr, cn, days)
    write_public(cert_p, cert.public_bytes(serialization.Encoding.PEM))
    return cert_p
