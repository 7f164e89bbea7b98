"""PKI and enrollment: keys owner-only, correct extensions, CSR checks, friendly CLI errors, expiry warning."""
from __future__ import annotations

import datetime as dt
import json
import os
import stat
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.cli import main as labedge
from agent.transport import enroll
from facility import pki

UTC = dt.timezone.utc


def load(p: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(p.read_bytes())


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture()
def ca(tmp_path: Path) -> Path:
    return pki.init_ca(tmp_path / "ca")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_ca_and_leaf_keys_are_owner_only(ca: Path, tmp_path: Path) -> None:
    old = os.umask(0)  # a permissive umask must not widen key permissions
    try:
        cert, key = pki.issue(ca, "dev-1", tmp_path / "out")
        k2, _csr = enroll.make_key_and_csr("dev-2", tmp_path / "enr")
    finally:
        os.umask(old)
    for k in (ca / "ca.key", key, k2):
        assert mode(k) == 0o600, f"{k} has mode {oct(mode(k))}"
    assert not list(tmp_path.rglob("*.tmp")), "temporary files left behind"


def test_ca_is_p256_self_signed_ca(ca: Path) -> None:
    c = load(ca / "ca.pem")
    assert isinstance(c.public_key(), ec.EllipticCurvePublicKey) and c.public_key().curve.name == "secp256r1"
    assert c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    c.verify_directly_issued_by(c)


def test_client_cert_has_client_auth_only(ca: Path, tmp_path: Path) -> None:
    cert, _ = pki.issue(ca, "smartlab-01", tmp_path, days=30)
    c = load(cert)
    c.verify_directly_issued_by(load(ca / "ca.pem"))
    assert c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "smartlab-01"
    eku = list(c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert eku == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert 29 <= (c.not_valid_after_utc - dt.datetime.now(UTC)).days <= 30


def test_server_cert_has_loopback_san_and_extra(ca: Path, tmp_path: Path) -> None:
    cert, _ = pki.issue(ca, "broker", tmp_path, server=True, san=["broker.example.org", "10.1.2.3"])
    c = load(cert)
    eku = list(c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert eku == [ExtendedKeyUsageOID.SERVER_AUTH]
    san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "broker.example.org"}
    assert {str(i) for i in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "10.1.2.3"}


def test_expired_cert_for_tests(ca: Path, tmp_path: Path) -> None:
    now = dt.datetime.now(UTC)
    cert, _ = pki.issue(ca, "old", tmp_path, not_before=now - dt.timedelta(days=10),
                        not_after=now - dt.timedelta(days=1))
    info = pki.cert_info(cert)
    assert info["expired"] is True and info["days_left"] < 0 and info["cn"] == "old"
    assert info["issuer"] == "labedge CA"


@pytest.mark.parametrize("bad", ["a/b", "a+b", "dev#1", "with space", "%u", "", "x" * 65, "..", "日本"])
def test_bad_cn_refused_with_its_name(ca: Path, tmp_path: Path, bad: str) -> None:
    with pytest.raises(pki.PKIError, match="not allowed"):
        pki.issue(ca, bad, tmp_path)
    assert not list(tmp_path.glob("*.key"))


def test_refuses_to_overwrite_keys(ca: Path, tmp_path: Path) -> None:
    pki.issue(ca, "dev", tmp_path)
    before = (tmp_path / "dev.key").read_bytes()
    with pytest.raises(pki.PKIError, match="already exists"):
        pki.issue(ca, "dev", tmp_path)
    with pytest.raises(pki.PKIError, match="already exists"):
        enroll.make_key_and_csr("dev", tmp_path)
    with pytest.raises(pki.PKIError, match="refusing to replace a CA"):
        pki.init_ca(ca)
    assert (tmp_path / "dev.key").read_bytes() == before
    pki.issue(ca, "dev", tmp_path, force=True)
    assert (tmp_path / "dev.key").read_bytes() != before


def test_enroll_then_sign_keeps_key_on_pc(ca: Path, tmp_path: Path) -> None:
    key, csr = enroll.make_key_and_csr("pc-7", tmp_path / "pc")
    cert = pki.sign_csr(ca, csr, tmp_path / "admin")
    assert cert == tmp_path / "admin" / "pc-7.pem"
    assert not (tmp_path / "admin" / "pc-7.key").exists()
    c = load(cert)
    c.verify_directly_issued_by(load(ca / "ca.pem"))
    k = serialization.load_pem_private_key(key.read_bytes(), None)
    assert c.public_key().public_numbers() == k.public_key().public_numbers()
    assert list(c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def _csr(cn: str, key=None) -> bytes:
    key = key or ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER)


def test_sign_csr_rejects_tampered_signature(ca: Path, tmp_path: Path) -> None:
    der = _csr("dev-aaaa").replace(b"dev-aaaa", b"dev-bbbb")  # same length: parses, signature now wrong
    p = tmp_path / "t.csr"
    p.write_bytes(der)
    with pytest.raises(pki.PKIError, match="signature does not match"):
        pki.sign_csr(ca, p, tmp_path)
    assert not (tmp_path / "dev-bbbb.pem").exists()


@pytest.mark.parametrize("cn", ["dev/other", "rde/#", "a b"])
def test_sign_csr_rejects_topic_breaking_cn(ca: Path, tmp_path: Path, cn: str) -> None:
    p = tmp_path / "x.csr"
    p.write_bytes(_csr(cn))
    with pytest.raises(pki.PKIError) as ei:
        pki.sign_csr(ca, p, tmp_path / "o")
    assert repr(cn) in str(ei.value) and "not allowed" in str(ei.value)
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_sign_csr_rejects_non_p256(ca: Path, tmp_path: Path) -> None:
    p = tmp_path / "x.csr"
    p.write_bytes(_csr("dev-x", ec.generate_private_key(ec.SECP384R1())))
    with pytest.raises(pki.PKIError, match="P-256"):
        pki.sign_csr(ca, p, tmp_path)


# ---------------------------------------------------------------- CLI: friendly errors, never a traceback

def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = labedge(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def test_cli_full_flow(tmp_path: Path, capsys) -> None:
    ca = tmp_path / "ca"
    rc, out, _ = run_cli(capsys, "pki", "init", "--out", str(ca))
    assert rc == 0 and (ca / "ca.pem").exists() and "ca.key" in out
    rc, out, _ = run_cli(capsys, "pki", "issue", "--ca", str(ca), "--name", "broker", "--out", str(tmp_path / "b"),
                         "--server", "--days", "10")
    assert rc == 0 and "server" in out and (tmp_path / "b" / "broker.pem").exists()
    rc, out, _ = run_cli(capsys, "enroll", "--name", "xrd-pc-3", "--out", str(tmp_path / "pc"),
                         "--broker", "rde.example.org:8883")
    assert rc == 0
    assert "xrd-pc-3.csr" in out and 'device_id = "xrd-pc-3"' in out and "mqtts://rde.example.org:8883" in out
    rc, out, _ = run_cli(capsys, "pki", "sign-csr", "--ca", str(ca), "--csr", str(tmp_path / "pc" / "xrd-pc-3.csr"),
                         "--out", str(tmp_path / "pc"))
    assert rc == 0 and pki.cert_info(tmp_path / "pc" / "xrd-pc-3.pem")["cn"] == "xrd-pc-3"


def test_enroll_config_lines_pasted_at_the_end_of_a_starter_config_load(tmp_path: Path, capsys) -> None:
    """A new user appends the printed block to what `labedge init` wrote: it must load as meant."""
    from agent.config import load_config
    (tmp_path / "data").mkdir()
    conf = tmp_path / "labedge.toml"
    rc, _, _ = run_cli(capsys, "init", "--out", str(conf), "--device-id", "xrd-pc-3", "--watch", str(tmp_path / "data"))
    assert rc == 0
    rc, out, _ = run_cli(capsys, "enroll", "--name", "xrd-pc-3", "--out", str(tmp_path / "pc"),
                         "--broker", "rde.example.org:8883")
    assert rc == 0
    step3 = out.split("\n3. ", 1)[1].split("\n4. ", 1)[0]
    block = [line[5:] for line in step3.splitlines() if line.startswith("     ")]
    assert block[0] == "[upload]", out
    with conf.open("a", encoding="utf-8") as f:
        f.write("\n".join(block) + "\n")
    cfg = load_config(conf)
    assert cfg.device_id == "xrd-pc-3" and cfg.upload is not None
    assert cfg.upload.cert_file == (tmp_path / "pc" / "xrd-pc-3.pem").resolve()
    assert "labedge check --config YOUR_CONFIG --online" in out


def test_cli_errors_are_one_line(tmp_path: Path, capsys) -> None:
    rc, _, err = run_cli(capsys, "pki", "issue", "--ca", str(tmp_path / "nope"), "--name", "d", "--out", str(tmp_path))
    assert rc == 2 and "does not exist" in err and "labedge pki init" in err
    (tmp_path / "g.csr").write_text("hello")
    pki.init_ca(tmp_path / "ca")
    rc, _, err = run_cli(capsys, "pki", "sign-csr", "--ca", str(tmp_path / "ca"), "--csr", str(tmp_path / "g.csr"),
                         "--out", str(tmp_path))
    assert rc == 2 and "g.csr" in err and "not a certificate signing request" in err
    rc, _, err = run_cli(capsys, "pki", "sign-csr", "--ca", str(tmp_path / "ca"), "--csr", str(tmp_path / "none.csr"),
                         "--out", str(tmp_path))
    assert rc == 2 and "none.csr" in err and "cannot read" in err
    rc, _, err = run_cli(capsys, "enroll", "--name", "pc", "--out", str(tmp_path / "e"))
    assert rc == 0
    rc, _, err = run_cli(capsys, "enroll", "--name", "pc", "--out", str(tmp_path / "e"))
    assert rc == 2 and "pc.key already exists" in err and "--force" in err
    rc, _, err = run_cli(capsys, "enroll", "--name", "a/b", "--out", str(tmp_path / "e"))
    assert rc == 2 and "'a/b'" in err


# ---------------------------------------------------------------- status: certificate expiry warning

def _config(tmp_path: Path, cert: Path, device_id: str) -> Path:
    watch = tmp_path / "watch"
    watch.mkdir(exist_ok=True)
    cfg = tmp_path / "labedge.toml"
    cfg.write_text(f'''device_id = "{device_id}"
spool_dir = "{(tmp_path / 'spool').as_posix()}"
state_dir = "{(tmp_path / 'state').as_posix()}"
log_dir = "{(tmp_path / 'log').as_posix()}"
[upload]
broker = "mqtts://127.0.0.1:8883"
ca_file = "ca/ca.pem"
cert_file = "{cert.as_posix()}"
key_file = "{cert.with_suffix('.key').as_posix()}"
[[instruments]]
id = "xrd"
watch = ["{watch.as_posix()}"]
''', encoding="utf-8")
    return cfg


@pytest.mark.parametrize("days,warn", [(10, "expires in"), (300, None)])
def test_status_warns_before_expiry(ca: Path, tmp_path: Path, capsys, days: int, warn: str | None) -> None:
    cert, _ = pki.issue(ca, "dev-s", tmp_path, days=days)
    cfg = _config(tmp_path, cert, "dev-s")
    rc, out, _ = run_cli(capsys, "status", "--json", "--config", str(cfg))
    st = json.loads(out)
    assert rc == 3 and st["certificate"]["cn"] == "dev-s"  # 3: the agent is not running
    assert st["certificate"]["days_left"] in (days - 1, days)
    if warn:
        assert warn in st["certificate"]["warning"] and "renew" in st["certificate"]["warning"]
        rc, text, _ = run_cli(capsys, "status", "--config", str(cfg))
        assert "WARNING: the device certificate" in text and "expires in" in text
    else:
        assert st["certificate"]["warning"] is None
        rc, text, _ = run_cli(capsys, "status", "--config", str(cfg))
        assert "WARNING" not in text and "certificate: CN=dev-s" in text


def test_status_expired_missing_and_wrong_cn(ca: Path, tmp_path: Path, capsys) -> None:
    now = dt.datetime.now(UTC)
    cert, _ = pki.issue(ca, "dev-e", tmp_path, not_before=now - dt.timedelta(days=400),
                        not_after=now - dt.timedelta(days=2))
    st = json.loads(run_cli(capsys, "status", "--json", "--config", str(_config(tmp_path, cert, "dev-e")))[1])
    assert "EXPIRED" in st["certificate"]["warning"]
    st = json.loads(run_cli(capsys, "status", "--json", "--config",
                            str(_config(tmp_path, tmp_path / "missing.pem", "dev-e")))[1])
    assert "cannot read the device certificate" in st["certificate"]["warning"]
    assert "missing.pem" in st["certificate"]["warning"]
    good, _ = pki.issue(ca, "dev-g", tmp_path)
    st = json.loads(run_cli(capsys, "status", "--json", "--config", str(_config(tmp_path, good, "other-id")))[1])
    assert "differs from device_id" in st["certificate"]["warning"]


def test_status_offline_has_no_certificate_section(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "c.toml"
    (tmp_path / "w").mkdir()
    cfg.write_text(f'device_id = "d"\nstate_dir = "{(tmp_path / "s").as_posix()}"\n'
                   f'[[instruments]]\nid = "x"\nwatch = ["{(tmp_path / "w").as_posix()}"]\n')
    st = json.loads(run_cli(capsys, "status", "--json", "--config", str(cfg))[1])
    assert "certificate" not in st and st["offline"] is True
