"""What the CA has issued, what it has revoked, and the CRL the broker checks (`crlfile`).

Every leaf the CA signs is kept as ``<ca>/by-serial/<serial>.pem``, so `labedge pki revoke NAME` can
find the certificates of a name. Revocations are kept in ``<ca>/revoked.json`` and published as
``<ca>/crl.pem``. The shipped broker config checks that CRL at every connect (mosquitto
``crlfile``; OpenSSL then *requires* a CRL from this CA, which is why `pki init` writes an empty
one). The renewal service reads the same ``revoked.json``.
"""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from wire.identity import PKIError, check_cn, cn_of, utc_now, write_public

CRL_FILE = "crl.pem"
ISSUED_DIR = "by-serial"
REVOKED_FILE = "revoked.json"
#: How long a published CRL stays valid. OpenSSL refuses EVERY client once the broker's CRL is past
#: its nextUpdate, so the CRL is long-lived; it is rewritten on every revocation (and by `pki crl`).
CRL_DAYS = 3650


def serial_hex(cert: x509.Certificate) -> str:
    return format(cert.serial_number, "x")


def record_issued(ca_dir: Path, cert: x509.Certificate) -> Path:
    """Keep a copy of a certificate the CA just signed (public data; the index `revoke` searches)."""
    p = Path(ca_dir) / ISSUED_DIR / f"{serial_hex(cert)}.pem"
    write_public(p, cert.public_bytes(serialization.Encoding.PEM))
    return p


def issued(ca_dir: Path, name: str | None = None) -> list[x509.Certificate]:
    """Certificates in the index, optionally only those whose CN is ``name``."""
    out = []
    for p in sorted((Path(ca_dir) / ISSUED_DIR).glob("*.pem")):
        try:
            c = x509.load_pem_x509_certificate(p.read_bytes())
        except ValueError:
            continue
        if name is None or cn_of(c.subject) == name:
            out.append(c)
    return out


def revoked(ca_dir: Path) -> dict[str, dict[str, Any]]:
    """serial (hex) -> {"name", "revoked_at", "reason"} of every revoked certificate."""
    p = Path(ca_dir) / REVOKED_FILE
    if not p.exists():
        return {}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PKIError(f"{p}: unreadable revocation list ({exc}); restore it from a backup") from None
    if not isinstance(data, dict):
        raise PKIError(f"{p}: not a revocation list (expected a JSON object)")
    return data


def is_revoked(ca_dir: Path, cert: x509.Certificate) -> bool:
    return serial_hex(cert) in revoked(ca_dir)


def _load_ca(ca_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    from facility.pki import _load_ca as load  # one loader, one set of error messages
    return load(ca_dir)


def write_crl(ca_dir: Path) -> Path:
    """(Re)write ``<ca>/crl.pem`` from ``revoked.json``, signed by the CA."""
    ca_dir = Path(ca_dir)
    ca_cert, ca_key = _load_ca(ca_dir)
    now = utc_now()
    entries = revoked(ca_dir)
    b = (x509.CertificateRevocationListBuilder().issuer_name(ca_cert.subject)
         .last_update(now - _dt.timedelta(minutes=5))
         .next_update(now + _dt.timedelta(days=CRL_DAYS))
         .add_extension(x509.CRLNumber(len(entries) + int(now.timestamp())), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    for serial, e in sorted(entries.items()):
        when = _dt.datetime.fromtimestamp(float(e.get("revoked_at", now.timestamp())), _dt.timezone.utc)
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(int(serial, 16))
                                      .revocation_date(when).build())
    crl = b.sign(ca_key, hashes.SHA256())
    out = ca_dir / CRL_FILE
    write_public(out, crl.public_bytes(serialization.Encoding.PEM))
    return out


def _save_revoked(ca_dir: Path, data: dict[str, dict[str, Any]]) -> None:
    write_public(Path(ca_dir) / REVOKED_FILE, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def revoke(ca_dir: Path, name: str | None = None, *, cert_file: Path | None = None,
           reason: str = "") -> list[str]:
    """Revoke every unexpired certificate issued to ``name`` (or the one in ``cert_file``); rewrite the CRL.

    Returns the serials newly revoked (already revoked ones are left as they are)."""
    ca_dir = Path(ca_dir)
    ca_cert, _ = _load_ca(ca_dir)
    if cert_file is not None:
        try:
            c = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
        except (OSError, ValueError) as exc:
            raise PKIError(f"{cert_file}: not a readable PEM certificate ({exc})") from None
        if c.issuer != ca_cert.subject:
            raise PKIError(f"{cert_file}: issued by {c.issuer.rfc4514_string()}, not by this CA ({ca_dir})")
        targets = [c]
    else:
        check_cn(name or "", what="name to revoke")
        now = utc_now()
        targets = [c for c in issued(ca_dir, name) if c.not_valid_after_utc > now]
        if not targets:
            raise PKIError(f"no unexpired certificate for {name!r} in {ca_dir / ISSUED_DIR} (certificates "
                           "signed before this index existed: revoke them with --cert FILE)")
    data = revoked(ca_dir)
    new = []
    for c in targets:
        s = serial_hex(c)
        if s not in data:
            data[s] = {"name": cn_of(c.subject), "revoked_at": utc_now().timestamp(), "reason": reason[:200],
                       "not_after": c.not_valid_after_utc.isoformat()}
            new.append(s)
    _save_revoked(ca_dir, data)
    write_crl(ca_dir)
    return new


def revoked_names(ca_dir: Path) -> set[str]:
    """Names that have a revoked certificate and no unexpired one that is not revoked (the fleet view's
    "revoked"): a PC re-enrolled after a revocation is not flagged."""
    rev = revoked(ca_dir)
    now = utc_now()
    live = {cn_of(c.subject) for c in issued(ca_dir) if c.not_valid_after_utc > now and serial_hex(c) not in rev}
    return {str(e.get("name")) for e in rev.values()} - live
