"""Signed "stored" receipts: the device deletes its copy only on the word of a real receiver.

The broker ACL gives receiver rights to a certificate *name*; before this, anyone who got a
certificate called ``labedge-receiver`` signed (one `labedge enroll` + `pki sign-csr`) could send
``stored`` with the digests copied from the offer, and devices deleted packages nobody had stored.

So a receipt now carries the receiver's certificate and an ECDSA signature, made with the
receiver's private key, over a statement naming the device, the package and the digests of the
two manifests the receiver hashed *from the stored bag* after verifying every payload sha256. The
device accepts it only if the certificate was issued by the site CA (the same ``ca_file`` it
trusts for the broker), is valid now and carries the labedge-receiver extended key usage, which
only the CA holder can put there (`pki issue --role receiver`; `pki sign-csr` never does). A device
certificate, whatever its name, cannot produce a valid receipt.
See docs/protocol.md ("stored receipts") for why this and not an HMAC or a challenge.
"""
from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from wire.identity import utc_now

#: Extended key usage that marks a certificate as a facility receiver (a UUID-based OID, 2.25.<uuid>).
RECEIVER_EKU = x509.ObjectIdentifier("2.25.81664568762729299343011922235741152415")
STATEMENT_VERSION = "labedge-stored-v1"


class ReceiptError(Exception):
    """A receipt that does not prove storage by a facility receiver; the text says why."""


def statement(device: str, package_id: str, manifest_sha256: str, tagmanifest_sha256: str) -> bytes:
    return f"{STATEMENT_VERSION}\n{device}\n{package_id}\n{manifest_sha256}\n{tagmanifest_sha256}\n".encode()


def is_receiver_cert(cert: x509.Certificate) -> bool:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return RECEIVER_EKU in eku


class ReceiptSigner:
    """The receiver's side: its certificate (sent along) and key (never leaves the receiver)."""

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        pem = Path(cert_file).read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
        if not is_receiver_cert(cert):
            raise ReceiptError(f"{cert_file} is not a receiver certificate (no labedge-receiver key usage): "
                               "devices will not accept its receipts; issue it with "
                               "`labedge pki issue --role receiver`")
        key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ReceiptError(f"{key_file}: expected an EC private key")
        self._key = key
        self._cert = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def sign(self, device: str, package_id: str, digests: dict[str, str]) -> dict[str, Any]:
        msg = statement(device, package_id, digests["manifest_sha256"], digests["tagmanifest_sha256"])
        sig = self._key.sign(msg, ec.ECDSA(hashes.SHA256()))
        return {**digests, "receiver_cert": self._cert, "sig": base64.b64encode(sig).decode("ascii")}


class ReceiptVerifier:
    """The device's side: is this ``stored`` signed by a receiver certificate of our CA?"""

    def __init__(self, ca_file: Path) -> None:
        self._ca = x509.load_pem_x509_certificate(Path(ca_file).read_bytes())
        self._good: dict[str, x509.Certificate] = {}  # sha256 of the PEM -> verified certificate

    def _receiver(self, pem: Any) -> x509.Certificate:
        if not isinstance(pem, str) or len(pem) > 8192:
            raise ReceiptError("the receipt carries no receiver certificate")
        key = hashlib.sha256(pem.encode()).hexdigest()
        cert = self._good.get(key)
        if cert is None:
            try:
                cert = x509.load_pem_x509_certificate(pem.encode())
                cert.verify_directly_issued_by(self._ca)
            except (ValueError, TypeError, InvalidSignature):
                raise ReceiptError("the receipt's certificate is not issued by this site's CA") from None
            if not is_receiver_cert(cert):
                raise ReceiptError("the receipt's certificate is not a receiver certificate "
                                   "(a device or an impostor sent it)")
            if len(self._good) > 64:
                self._good.clear()
            self._good[key] = cert
        now = utc_now()
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise ReceiptError("the receipt's receiver certificate is not valid now")
        return cert

    def verify(self, device: str, package_id: str, body: dict[str, Any]) -> None:
        """Raises ReceiptError unless ``body`` is a receipt for (device, package) by a real receiver."""
        cert = self._receiver(body.get("receiver_cert"))
        m, t, sig = body.get("manifest_sha256"), body.get("tagmanifest_sha256"), body.get("sig")
        if not (isinstance(m, str) and isinstance(t, str) and isinstance(sig, str)):
            raise ReceiptError("the receipt lacks its digests or signature")
        try:
            raw = base64.b64decode(sig, validate=True)
            pub = cert.public_key()
            if not isinstance(pub, ec.EllipticCurvePublicKey):
                raise ReceiptError("the receiver certificate's key is not an EC key")
            pub.verify(raw, statement(device, package_id, m, t), ec.ECDSA(hashes.SHA256()))
        except (ValueError, InvalidSignature):
            raise ReceiptError("the receipt's signature is not valid for this package") from None
