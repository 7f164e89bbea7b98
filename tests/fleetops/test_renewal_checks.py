"""The renewal service's conditions, one by one: it signs only the authenticated device's own new key,
while its current certificate is valid and not revoked and its name is not reserved; revocation goes
into the CRL the broker checks."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.cli import main as labedge
from facility import pki as P
from facility.renewal import RenewalRefused, check_renewal
from facility.revocation import revoke, revoked
from wire import renewal as R

UTC = dt.timezone.utc


def request(cert_p: Path, key_p: Path, cn: str, *, new_key: ec.EllipticCurvePrivateKey | None = None,
            proof_key: Path | None = None) -> dict:
    """A renewal request as the device makes it (agent.fleet.renew), with knobs to forge it."""
    new_key = new_key or ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])).sign(new_key, hashes.SHA256()))
    csr_pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    signer = serialization.load_pem_private_key((proof_key or key_p).read_bytes(), password=None)
    rid = "0123456789abcdef"
    return {"type": "renew", "id": rid, "csr": csr_pem, "current": cert_p.read_text(),
            "proof": R.b64(signer.sign(R.proof_bytes(rid, csr_pem), ec.ECDSA(hashes.SHA256())))}


@pytest.fixture()
def ca(tmp_path: Path) -> Path:
    return P.init_ca(tmp_path / "ca")


def test_a_good_request_is_signed_for_the_new_key(ca: Path, tmp_path: Path) -> None:
    cert, key = P.issue(ca, "dev-01", tmp_path)
    new = ec.generate_private_key(ec.SECP256R1())
    csr, cn = check_renewal(ca, "dev-01", request(cert, key, "dev-01", new_key=new))
    signed = P.sign_parsed_csr(ca, csr, cn, 30)
    assert signed.public_key().public_numbers() == new.public_key().public_numbers()
    assert (ca / "by-serial" / f"{signed.serial_number:x}.pem").is_file(), "renewed certificate not indexed"


def _expired(ca: Path, tmp: Path) -> tuple[Path, Path]:
    now = dt.datetime.now(UTC)
    return P.issue(ca, "dev-01", tmp / "old", not_before=now - dt.timedelta(days=9),
                   not_after=now - dt.timedelta(days=1))


@pytest.mark.parametrize("case, words", [
    ("csr for another device", "CSR's CN 'dev-02' is not the authenticated device"),
    ("topic of another device", "current certificate's CN 'dev-01' is not the authenticated device 'dev-02'"),
    ("expired current", "not valid now"),
    ("revoked current", "is revoked"),
    ("reserved name", "reserved"),
    ("proof by another key", "not signed with the current certificate's key"),
    ("current from another CA", "not issued by this CA"),
    ("same key again", "reuses the current key"),
    ("server certificate", "not a device (client) certificate"),
])
def test_a_bad_request_is_refused_with_the_reason(ca: Path, tmp_path: Path, case: str, words: str) -> None:
    cert, key = P.issue(ca, "dev-01", tmp_path)
    device, body = "dev-01", None
    if case == "csr for another device":
        body = request(cert, key, "dev-02")
    elif case == "topic of another device":
        device, body = "dev-02", request(cert, key, "dev-02")
    elif case == "expired current":
        c2, k2 = _expired(ca, tmp_path)
        body = request(c2, k2, "dev-01")
    elif case == "revoked current":
        revoke(ca, "dev-01")
        body = request(cert, key, "dev-01")
    elif case == "reserved name":
        c2, k2 = P.issue(ca, "labedge-receiver", tmp_path / "rx")
        device, body = "labedge-receiver", request(c2, k2, "labedge-receiver")
    elif case == "proof by another key":
        _c, other = P.issue(ca, "dev-09", tmp_path / "other")
        body = request(cert, key, "dev-01", proof_key=other)
    elif case == "current from another CA":
        evil = P.init_ca(tmp_path / "evil")
        c2, k2 = P.issue(evil, "dev-01", tmp_path / "evil-out")
        body = request(c2, k2, "dev-01")
    elif case == "same key again":
        same = serialization.load_pem_private_key(key.read_bytes(), password=None)
        body = request(cert, key, "dev-01", new_key=same)
    elif case == "server certificate":
        c2, k2 = P.issue(ca, "dev-01", tmp_path / "srv", server=True)
        body = request(c2, k2, "dev-01")
    with pytest.raises(RenewalRefused, match=words.replace("(", r"\(").replace(")", r"\)")):
        check_renewal(ca, device, body)


def test_revoke_by_name_writes_a_signed_crl_with_every_unexpired_certificate(ca: Path, tmp_path: Path,
                                                                             capsys) -> None:
    a, _ = P.issue(ca, "dev-01", tmp_path / "a")
    b, _ = P.issue(ca, "dev-01", tmp_path / "b", force=True)
    other, _ = P.issue(ca, "dev-02", tmp_path / "c")
    crl0 = x509.load_pem_x509_crl((ca / "crl.pem").read_bytes())
    assert len(list(crl0)) == 0, "pki init must write an empty CRL"
    assert labedge(["pki", "revoke", "dev-01", "--ca", str(ca)]) == 0
    assert "revoked 2 certificate(s) of dev-01" in capsys.readouterr().out
    crl = x509.load_pem_x509_crl((ca / "crl.pem").read_bytes())
    ca_cert = x509.load_pem_x509_certificate((ca / "ca.pem").read_bytes())
    assert crl.is_signature_valid(ca_cert.public_key())
    serials = {r.serial_number for r in crl}
    load = lambda p: x509.load_pem_x509_certificate(p.read_bytes()).serial_number  # noqa: E731
    assert serials == {load(a), load(b)} and load(other) not in serials
    assert crl.next_update_utc > dt.datetime.now(UTC) + dt.timedelta(days=365)
    assert labedge(["pki", "revoke", "dev-01", "--ca", str(ca)]) == 0  # again: nothing new, no error
    assert "already revoked" in capsys.readouterr().out
    assert len(revoked(ca)) == 2


def test_revoke_errors_are_one_line(ca: Path, capsys) -> None:
    assert labedge(["pki", "revoke", "nobody", "--ca", str(ca)]) == 2
    err = capsys.readouterr().err
    assert "no unexpired certificate for 'nobody'" in err and "Traceback" not in err
    assert labedge(["pki", "revoke", "bad/name", "--ca", str(ca)]) == 2
    assert "not allowed" in capsys.readouterr().err
