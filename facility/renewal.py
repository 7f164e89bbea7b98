"""The certificate renewal service (`labedge pki serve`): signs a device's new CSR over MQTT.

A request is signed only if ALL hold (docs/fleet-operations.md):
- the CSR's CN equals the device id in the topic, which the broker ACL binds to the sender's CN;
- the request carries the device's current certificate, issued by this CA, valid now, for client
  use, with that same CN, not revoked, and proves possession of its key (``proof``);
- the name is not reserved for a facility identity;
- the CSR is well formed (P-256, self-signed) and has a NEW key.
Everything else gets a ``refused`` answer with the reason, and a log line.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from config.validation import BrokerAddress, ConfigError, read_toml, resolve_path, validate_against
from facility.pki import PKIError, _load_ca, parse_csr, sign_parsed_csr
from facility.revocation import is_revoked
from wire import renewal as R
from wire.identity import cn_of, utc_now
from wire.link import Link, LinkSettings
from wire.tls import client_context, own_cert_summary

log = logging.getLogger(__name__)

#: A device gets at most one new certificate per this many seconds (a looping or hostile device
#: must not fill the CA's index); its renewal is retried much later anyway.
MIN_INTERVAL = 300.0
#: Facility identities: a device certificate with one of these names would get their ACL rights.
BUILTIN_RESERVED = ("labedge-admin", R.SERVICE_CN, "localhost")


class RenewalRefused(Exception):
    """The request does not meet a condition; the text says which, for the device and the log."""


def is_reserved_name(name: str, extra: tuple[str, ...] = ()) -> bool:
    """The one place that says which names are never a device's: the CA's rule (`labedge-*`), the
    topic words a device id may not be, and the site's extra names."""
    from facility.pki import is_reserved
    from wire.topics import RESERVED_DEVICE_IDS
    low = name.lower()
    return (is_reserved(name) or low in BUILTIN_RESERVED or low in RESERVED_DEVICE_IDS or name in extra)


def check_renewal(ca_dir: Path, device: str, body: dict[str, Any], *,
                  reserved: tuple[str, ...] = ()) -> tuple[x509.CertificateSigningRequest, str]:
    """Every condition for signing; returns the checked (csr, CN) or raises RenewalRefused."""
    if is_reserved_name(device, reserved):
        raise RenewalRefused(f"the name {device!r} is reserved for a facility identity")
    ca_cert, _ = _load_ca(ca_dir)
    try:
        current = x509.load_pem_x509_certificate(body["current"].encode())
    except ValueError:
        raise RenewalRefused("the current certificate is not a PEM certificate") from None
    try:
        current.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        raise RenewalRefused("the current certificate was not issued by this CA") from None
    if cn_of(current.subject) != device:
        raise RenewalRefused(f"the current certificate's CN {cn_of(current.subject)!r} is not the "
                             f"authenticated device {device!r}")
    now = utc_now()
    if not current.not_valid_before_utc <= now <= current.not_valid_after_utc:
        raise RenewalRefused(f"the current certificate is not valid now (valid "
                             f"{current.not_valid_before_utc:%Y-%m-%d} to {current.not_valid_after_utc:%Y-%m-%d})")
    try:
        eku = current.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = []
    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise RenewalRefused("the current certificate is not a device (client) certificate")
    if is_revoked(ca_dir, current):
        raise RenewalRefused(f"the current certificate (serial {current.serial_number:x}) is revoked")
    pub = current.public_key()
    try:
        if not isinstance(pub, ec.EllipticCurvePublicKey):
            raise InvalidSignature
        pub.verify(R.unb64(body["proof"]), R.proof_bytes(body["id"], body["csr"]), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, R.RenewalMessageError):
        raise RenewalRefused("the request is not signed with the current certificate's key") from None
    try:
        csr, cn = parse_csr(body["csr"].encode(), "renewal CSR")
    except PKIError as exc:
        raise RenewalRefused(str(exc)) from None
    if cn != device:
        raise RenewalRefused(f"the CSR's CN {cn!r} is not the authenticated device {device!r}")
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if csr.public_key().public_bytes(serialization.Encoding.DER, spki) == pub.public_bytes(
            serialization.Encoding.DER, spki):
        raise RenewalRefused("the CSR reuses the current key; renewal needs a new key")
    return csr, cn


@dataclass(frozen=True)
class RenewalConfig(BrokerAddress):
    source: Path
    broker: str
    ca_file: Path
    cert_file: Path
    key_file: Path
    ca_dir: Path
    topic_prefix: str = "rde"
    days: int = 365
    reserved_names: tuple[str, ...] = field(default_factory=tuple)
    keepalive: int = 60
    reconnect_max: float = 30.0
    log_level: str = "INFO"



def load_renewal_config(path: Path | str) -> RenewalConfig:
    path = Path(path)
    data = read_toml(path, "renewal service config")
    schema = json.loads(resources.files("config").joinpath("schema/pki-serve.v1.schema.json").read_text("utf-8"))
    validate_against(schema, data, path)
    base = path.parent.resolve()
    kw = {k: v for k, v in data.items() if k != "config_version"}
    for key in ("ca_file", "cert_file", "key_file", "ca_dir"):
        kw[key] = resolve_path(kw[key], base)
        if key != "ca_dir" and not kw[key].is_file():
            raise ConfigError(f"{path}: {key}: file {str(kw[key])!r} does not exist")
    if not (kw["ca_dir"] / "ca.key").is_file():
        raise ConfigError(f"{path}: ca_dir: {str(kw['ca_dir'])!r} is not a CA directory (no ca.key)")
    kw["reserved_names"] = tuple(kw.get("reserved_names", ()))
    return RenewalConfig(source=path, **kw)


class RenewalService:
    """One MQTT connection as ``labedge-pki``; answers each CSR on the device's own reply topic."""

    def __init__(self, cfg: RenewalConfig) -> None:
        self.cfg = cfg
        self.stats = {"signed": 0, "refused": 0}
        self._last_signed: dict[str, float] = {}
        cn, _, _ = own_cert_summary(cfg.cert_file)
        ctx = client_context(cfg.ca_file, cfg.cert_file, cfg.key_file)
        # A persistent session: requests sent while the service restarts wait at the broker.
        self.link = Link(LinkSettings(
            host=cfg.host, port=cfg.port, client_id=cn, ca_file=cfg.ca_file, cert_file=cfg.cert_file,
            key_file=cfg.key_file, keepalive=cfg.keepalive, session_expiry=3600, clean_start=False,
            backoff_max=cfg.reconnect_max, subscriptions=[(R.service_filter(cfg.topic_prefix), 1)]),
            ctx, on_message=self._on_message)

    def run(self, stop: threading.Event) -> int:
        log.info("renewal service for CA %s listening on %s", self.cfg.ca_dir, R.service_filter(self.cfg.topic_prefix))
        try:
            while not stop.is_set():
                if not self.link.connected and not self.link.ensure_connected(stop.wait):
                    break
                self.link.loop(timeout=0.1)
        finally:
            self.link.close()
        return 0

    def _on_message(self, msg: mqtt.MQTTMessage) -> None:
        try:
            device, req_id = R.parse_topic(self.cfg.topic_prefix, msg.topic, "csr")
            body = R.decode(msg.payload, ("renew",))
        except R.RenewalMessageError as exc:
            log.warning("ignoring a message on %s: %s", msg.topic[:200], exc)
            return
        reply: dict[str, Any]
        try:
            if body["id"] != req_id:
                raise RenewalRefused("the request id in the message differs from the topic's")
            csr, cn = check_renewal(self.cfg.ca_dir, device, body, reserved=self.cfg.reserved_names)
            since = time.monotonic() - self._last_signed.get(device, -MIN_INTERVAL)
            if since < MIN_INTERVAL:
                raise RenewalRefused(f"a certificate was issued to {device} {since:.0f} s ago; ask again in "
                                     f"{MIN_INTERVAL - since:.0f} s")
            cert = sign_parsed_csr(self.cfg.ca_dir, csr, cn, self.cfg.days)
            self._last_signed[device] = time.monotonic()
        except RenewalRefused as exc:
            self.stats["refused"] += 1
            log.warning("renewal for %s refused: %s", device, exc)
            reply = {"type": "refused", "id": req_id, "reason": str(exc)}
        except PKIError as exc:  # the CA itself is broken: say so, never sign half-checked
            self.stats["refused"] += 1
            log.error("renewal for %s failed at the CA: %s", device, exc)
            reply = {"type": "refused", "id": req_id, "reason": "the facility CA cannot sign now; try later"}
        else:
            self.stats["signed"] += 1
            log.info("renewed the certificate of %s: serial %x, valid until %s", device, cert.serial_number,
                     cert.not_valid_after_utc.isoformat())
            reply = {"type": "certificate", "id": req_id,
                     "certificate": cert.public_bytes(serialization.Encoding.PEM).decode()}
        self.link.publish(R.cert_topic(self.cfg.topic_prefix, device, req_id), R.encode(reply))
