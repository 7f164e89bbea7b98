"""Enrollment on the instrument PC: its own key (never leaves the PC), a CSR, and the certificate's health."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from wire.identity import PKIError, cert_info, check_cn, key_pem, write_private, write_public

#: `labedge status` warns this many days before the device certificate expires.
CERT_WARN_DAYS = 30


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
    write_private(key_p, key_pem(key), force=True)
    write_public(csr_p, csr.public_bytes(serialization.Encoding.PEM))
    return key_p, csr_p


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
