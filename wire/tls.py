"""TLS for both ends of the transport: contexts that always verify, and failures in plain words.

There is deliberately no option to skip verification or to connect without TLS: a gateway that
"falls back" is how data ends up on the open network.
"""
from __future__ import annotations

import datetime as dt
import socket
import ssl
from pathlib import Path

from cryptography import x509


#: The only TLS 1.2 suites either end offers: ECDHE key exchange, AES-GCM or ChaCha20-Poly1305.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"


class TransportError(Exception):
    """A connection or protocol failure, already phrased for the person reading `status`."""


class TLSConfigError(TransportError):
    """A certificate/key/CA file that cannot be used; names the file."""


def client_context(ca_file: Path, cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """TLS >= 1.2, server verified against ``ca_file`` (hostname included), our cert presented."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED + check_hostname by construction
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # TLS 1.2: forward-secret AEAD suites only (as the shipped broker config); TLS 1.3's are all AEAD.
    ctx.set_ciphers(TLS12_CIPHERS)
    for what, p in (("ca_file", ca_file), ("cert_file", cert_file), ("key_file", key_file)):
        if not Path(p).is_file():
            raise TLSConfigError(f"{what} {p}: file not found")
    try:
        ctx.load_verify_locations(cafile=str(ca_file))
    except (ssl.SSLError, OSError) as exc:
        raise TLSConfigError(f"ca_file {ca_file}: not a usable CA certificate ({exc})") from None
    try:
        ctx.load_cert_chain(str(cert_file), str(key_file))
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise TLSConfigError(f"cert_file {cert_file} and key_file {key_file} do not belong together") from None
        raise TLSConfigError(f"cert_file {cert_file} / key_file {key_file}: cannot be loaded ({exc})") from None
    except OSError as exc:
        raise TLSConfigError(f"cert_file {cert_file} / key_file {key_file}: {exc.strerror or exc}") from None
    return ctx


def own_cert_summary(cert_file: Path) -> tuple[str, dt.datetime | None, dt.datetime | None]:
    """(CN, not_before, not_after) of our own certificate, for messages; tolerant of bad files."""
    try:
        cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    except (OSError, ValueError):
        return "?", None, None
    cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return (str(cns[0].value) if cns else "?"), cert.not_valid_before_utc, cert.not_valid_after_utc


def local_cert_problem(cert_file: Path, now: dt.datetime | None = None) -> str | None:
    """'expired on …' / 'not valid before …' for our own certificate, else None."""
    cn, nb, na = own_cert_summary(cert_file)
    now = now or dt.datetime.now(dt.timezone.utc)
    if na is not None and now > na:
        return f"expired on {na:%Y-%m-%d %H:%M} UTC"
    if nb is not None and now < nb:
        return f"not valid before {nb:%Y-%m-%d %H:%M} UTC (check this PC's clock)"
    return None


def describe_failure(exc: BaseException, host: str, port: int, cert_file: Path, ca_file: Path) -> str:
    """Turn an exception from connecting into one sentence a lab user or admin can act on."""
    where = f"{host}:{port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = getattr(exc, "verify_code", None)
        if code == 10:
            return f"the broker's certificate at {where} has expired ({exc.verify_message})"
        if code == 62 or "hostname" in str(exc).lower() or "IP address mismatch" in str(exc):
            return f"the broker's certificate is not valid for the name {host!r} (wrong broker address?)"
        return f"the broker's certificate is not signed by the configured CA ({ca_file}): {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return describe_alert(str(exc), where, cert_file)
    if isinstance(exc, socket.gaierror):
        return f"cannot reach {where} (unknown host name)"
    if isinstance(exc, ConnectionRefusedError):
        return f"cannot reach {where} (connection refused: is the broker running and the port right?)"
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        # TCP was accepted (else: refused), then dropped on our ClientHello: not a TLS port, or a
        # firewall/security appliance cutting the session. Never retried without TLS.
        return (f"{where} reset the connection during the TLS handshake: it does not speak TLS on that port "
                "(wrong port?), or a firewall/security appliance blocked the session")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"cannot reach {where} (timed out: network, firewall or security appliance?)"
    if isinstance(exc, OSError):
        return f"cannot reach {where} ({exc.strerror or exc})"
    return f"connection to {where} failed: {exc}"


#: How every "the broker refused our certificate" message starts: the PC's summary tells the user
#: to call the facility for it (waiting never helps), instead of "will upload when reachable".
CERT_REJECTED = "the broker rejected this device's certificate"


def describe_alert(text: str, where: str, cert_file: Path) -> str:
    """A TLS alert the broker sent us: it did not accept our certificate (or the handshake)."""
    upper = text.upper()
    expired = local_cert_problem(cert_file)
    cn, _, _ = own_cert_summary(cert_file)
    if "CERTIFICATE_EXPIRED" in upper or expired and "ALERT" in upper:
        return f"{CERT_REJECTED} ({expired or 'expired'}): " \
               f"renew {cert_file} (labedge enroll, then pki sign-csr)"
    if any(k in upper for k in ("UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_REQUIRED", "DECRYPT_ERROR",
                                "CERTIFICATE_UNKNOWN", "UNSUPPORTED_CERTIFICATE", "ACCESS_DENIED",
                                "CERTIFICATE_REVOKED")):
        return f"{CERT_REJECTED} (CN={cn}, {cert_file}): " \
               "it is not signed by the CA the broker trusts, or was revoked"
    if "WRONG_VERSION_NUMBER" in upper or "UNEXPECTED_EOF" in upper or "RECORD_LAYER" in upper:
        return f"{where} does not speak TLS as expected (is this the broker's TLS port?)"
    return f"TLS with {where} failed: {text}"


def probe(host: str, port: int, ctx: ssl.SSLContext, cert_file: Path, ca_file: Path,
          timeout: float = 5.0) -> str | None:
    """Handshake once more outside MQTT to learn WHY a connection died before CONNACK.

    With TLS 1.3 the broker's verdict on our certificate arrives as an alert after the client
    thinks the handshake is done; paho then only says "connection lost". Reading one byte here
    surfaces the alert. Returns a plain-words reason, or None when TLS looks fine.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                tls.settimeout(1.0)
                try:
                    data = tls.recv(1)
                except (socket.timeout, TimeoutError):
                    return None  # the broker waits for CONNECT: TLS was accepted
                if data == b"":
                    return f"the broker at {host}:{port} closed the TLS connection right after the handshake " \
                           f"(certificate rejected? {local_cert_problem(cert_file) or 'check the broker log'})"
                return None
    except Exception as exc:  # noqa: BLE001 - every failure becomes words
        return describe_failure(exc, host, port, cert_file, ca_file)
