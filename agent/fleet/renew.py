"""Certificate renewal without a visit (the device side of `labedge pki serve`).

From ``[upload] renew_days`` before expiry, or on the `renew-certificate` command:
1. make a new key (``<key_file>.new``, 0600) and a CSR; send it with the current certificate and a
   proof signed by the current key, over the uploader's own mTLS session;
2. check the answer: issued by our CA, our CN, our NEW key, valid now;
3. test a fresh TLS connection to the broker with the new pair (the broker's CRL and CA check);
4. only then swap the files (the old pair kept as ``.old``) and reconnect with the new pair; if that
   connection fails, put the old pair back and reconnect with it. The ``.old`` pair is removed once
   the new one has connected.
A crash between the two file swaps is repaired at start (:func:`repair_pair`).
"""
from __future__ import annotations

import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.config import Config
from agent.health import Health
from wire import renewal as R
from wire.identity import PKIError, cn_of, key_pem, utc_now, write_private, write_public
from wire.reason_codes import NO_MATCHING_SUBSCRIBERS
from wire.tls import TransportError, client_context, probe

log = logging.getLogger(__name__)

#: Wait this long for the renewal service before asking again (it may be down).
ANSWER_TIMEOUT = 120.0
#: After a refusal or a failed test, try again this much later (the problem stays on the status).
RETRY_AFTER = 3600.0

Done = Callable[[bool, str], None]


def _suffixed(p: Path, suffix: str) -> Path:
    return p.with_name(p.name + suffix)


def _spki(pub: object) -> bytes:
    return pub.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def _pair_matches(cert_p: Path, key_p: Path) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_p.read_bytes())
        key = serialization.load_pem_private_key(key_p.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return False
    return _spki(cert.public_key()) == _spki(key.public_key())


def repair_pair(cert_p: Path, key_p: Path) -> str | None:
    """If a crash left the new key beside the old certificate (or the reverse), finish or undo the swap."""
    if not cert_p.exists() or not key_p.exists() or _pair_matches(cert_p, key_p):
        return None
    cert_new, key_old = _suffixed(cert_p, ".new"), _suffixed(key_p, ".old")
    if cert_new.exists() and _pair_matches(cert_new, key_p):
        os.replace(cert_new, cert_p)
        return "finished an interrupted certificate switch (new key and new certificate)"
    if key_old.exists() and _pair_matches(cert_p, key_old):
        os.replace(key_old, key_p)
        return "undid an interrupted certificate switch (old key and old certificate)"
    return None


@dataclass
class Pending:
    req_id: str
    started: float
    done: list[Done]
    mid: int | None = None


class CertificateRenewer:
    """Lives on the uploader's thread; ``publish`` sends on the uploader's connection."""

    def __init__(self, cfg: Config, health: Health) -> None:
        assert cfg.upload is not None
        self.u, self.device, self.health = cfg.upload, cfg.device_id, health
        self.cert_p, self.key_p = Path(self.u.cert_file), Path(self.u.key_file)
        self.pending: Pending | None = None
        self.switching: list[Done] | None = None     # set between the file swap and the next CONNACK
        self.relink = False                           # the uploader must reconnect with the files on disk
        self.forced: list[Done] = []
        self.next_try = 0.0
        self.no_service = 0                           # requests in a row nobody was subscribed to
        self.filter = R.device_filter(self.u.topic_prefix, self.device)
        fixed = repair_pair(self.cert_p, self.key_p)
        if fixed:
            log.warning("%s: %s", self.cert_p, fixed)

    # ------------------------------------------------------------------ when
    def days_left(self) -> float | None:
        try:
            cert = x509.load_pem_x509_certificate(self.cert_p.read_bytes())
        except (OSError, ValueError):
            return None
        return (cert.not_valid_after_utc - utc_now()).total_seconds() / 86400.0

    def request_now(self, done: Done | None = None) -> None:
        """The `renew-certificate` command: renew at the next tick, whatever the expiry."""
        if done is not None:
            self.forced.append(done)
        if self.pending is None and self.switching is None:
            self.next_try = 0.0

    def tick(self, publish: Callable[[str, bytes], object]) -> None:
        now = time.monotonic()
        if self.switching is not None:
            return
        if self.pending is not None:
            if now - self.pending.started < ANSWER_TIMEOUT:
                return
            log.warning("no answer from the renewal service for %.0f s; asking again later", ANSWER_TIMEOUT)
            self._fail(f"no answer from the facility's renewal service within {ANSWER_TIMEOUT:.0f} s "
                       "(is `labedge pki serve` running?)")
            return
        if now < self.next_try:
            return
        left = self.days_left()
        due = bool(self.forced) or (left is not None and self.u.renew_days > 0 and left <= self.u.renew_days)
        if not due:
            self.next_try = now + 3600.0  # expiry is days away: look again in an hour
            return
        self._send_request(publish, now)

    # ------------------------------------------------------------------ 1. request
    def _send_request(self, publish: Callable[[str, bytes], object], now: float) -> None:
        req_id = secrets.token_hex(8)
        try:
            current_pem = self.cert_p.read_text(encoding="ascii")
            current_key = serialization.load_pem_private_key(self.key_p.read_bytes(), password=None)
            if not isinstance(current_key, ec.EllipticCurvePrivateKey):
                raise ValueError("the device key is not an EC key")
            new_key = ec.generate_private_key(ec.SECP256R1())
            write_private(_suffixed(self.key_p, ".new"), key_pem(new_key), force=True)
        except (OSError, ValueError, TypeError, PKIError) as exc:
            self._fail(f"cannot prepare a renewal request: {exc}")
            return
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.device)]))
               .sign(new_key, hashes.SHA256()))
        csr_pem = csr.public_bytes(serialization.Encoding.PEM).decode()
        proof = current_key.sign(R.proof_bytes(req_id, csr_pem), ec.ECDSA(hashes.SHA256()))
        body = {"type": "renew", "id": req_id, "csr": csr_pem, "current": current_pem, "proof": R.b64(proof)}
        self.pending = Pending(req_id, now, self.forced)
        self.forced = []
        mid = publish(R.csr_topic(self.u.topic_prefix, self.device, req_id), R.encode(body))
        self.pending.mid = mid if isinstance(mid, int) else None
        log.info("certificate renewal: sent request %s (current certificate: %s days left)", req_id,
                 f"{self.days_left():.0f}" if self.days_left() is not None else "?")
        self._facts("requested")

    def on_puback(self, mid: int, reason: int) -> bool:
        """The broker's verdict on our request. True if ``mid`` was ours."""
        if self.pending is None or mid != self.pending.mid:
            return False
        if reason == NO_MATCHING_SUBSCRIBERS:  # the renewal service is not running: ask again soon
            self.no_service += 1
            wait = min(5.0 * 2 ** (self.no_service - 1), RETRY_AFTER)
            self._fail(f"the facility's renewal service is not listening (no subscriber at the broker)",
                       retry=wait)
        elif reason >= 0x80:
            self._fail(f"the broker refused the renewal request (reason {reason:#x}): check the broker ACL "
                       f"allows '{self.u.topic_prefix}/%u/pki/csr/#'")
        else:
            self.no_service = 0
        return True

    # ------------------------------------------------------------------ 2. + 3. the answer
    def handle(self, topic: str, payload: bytes) -> None:
        try:
            _dev, req_id = R.parse_topic(self.u.topic_prefix, topic, "cert")
            body = R.decode(payload, ("certificate", "refused"))
        except R.RenewalMessageError as exc:
            log.warning("ignoring a renewal answer on %s: %s", topic[:200], exc)
            return
        if self.pending is None or req_id != self.pending.req_id or body["id"] != req_id:
            log.info("ignoring a renewal answer for request %s (not the one waiting)", req_id)
            return
        if body["type"] == "refused":
            self._fail(f"the facility refused to renew the certificate: {body['reason'][:300]}")
            return
        try:
            new_cert = self._check_answer(body["certificate"])
        except ValueError as exc:
            self._fail(f"the renewal answer was not usable: {exc}")
            return
        cert_new = _suffixed(self.cert_p, ".new")
        write_public(cert_new, new_cert.public_bytes(serialization.Encoding.PEM))
        try:  # a fresh connection with the new pair, before anything is switched
            why = probe(self.u.host, self.u.port, client_context(self.u.ca_file, cert_new,
                        _suffixed(self.key_p, ".new")), cert_new, self.u.ca_file)
        except TransportError as exc:
            why = str(exc)
        if why:
            self._fail(f"the new certificate does not work with the broker ({why}); keeping the current one")
            return
        self._swap_in()
        self.switching = self.pending.done
        self.pending = None
        self.relink = True
        log.info("certificate renewal: the new certificate (until %s) passed a test connection; switching",
                 new_cert.not_valid_after_utc.date())
        self._facts("switching")

    def _check_answer(self, pem: str) -> x509.Certificate:
        cert = x509.load_pem_x509_certificate(pem.encode())
        ca = x509.load_pem_x509_certificate(Path(self.u.ca_file).read_bytes())
        try:
            cert.verify_directly_issued_by(ca)
        except Exception:  # noqa: BLE001 - any failure: not from our CA
            raise ValueError("the certificate is not issued by the configured CA") from None
        if cn_of(cert.subject) != self.device:
            raise ValueError(f"the certificate is for {cn_of(cert.subject)!r}, not {self.device!r}")
        new_key = serialization.load_pem_private_key(_suffixed(self.key_p, ".new").read_bytes(), password=None)
        if _spki(cert.public_key()) != _spki(new_key.public_key()):
            raise ValueError("the certificate is not for the new key this PC made")
        if not cert.not_valid_before_utc <= utc_now() <= cert.not_valid_after_utc:
            raise ValueError("the certificate is not valid now (check this PC's clock)")
        return cert

    # ------------------------------------------------------------------ 4. switch
    def _swap_in(self) -> None:
        # old pair kept until the new one has connected; key first, so repair_pair can finish the job
        write_private(_suffixed(self.key_p, ".old"), self.key_p.read_bytes(), force=True)
        write_public(_suffixed(self.cert_p, ".old"), self.cert_p.read_bytes())
        os.replace(_suffixed(self.key_p, ".new"), self.key_p)
        os.replace(_suffixed(self.cert_p, ".new"), self.cert_p)

    def connected(self) -> None:
        """The uploader's connection is up: if it is the first with the new pair, the switch is done."""
        if self.switching is None:
            return
        done, self.switching = self.switching, None
        for p in (_suffixed(self.key_p, ".old"), _suffixed(self.cert_p, ".old")):
            p.unlink(missing_ok=True)
        self.health.clear_problem("cert:renew")
        left = self.days_left()
        msg = f"certificate renewed: valid for {left:.0f} more days" if left is not None else "certificate renewed"
        log.info("%s", msg)
        self._facts("renewed", msg)
        self.next_try = time.monotonic() + 3600.0
        if left is not None and left <= self.u.renew_days:  # the service signs shorter than renew_days
            log.warning("the renewed certificate is valid for %.0f days, within renew_days (%.0f): renewing "
                        "again only in a day (make the renewal service's days longer than renew_days)",
                        left, self.u.renew_days)
            self.next_try = time.monotonic() + 86400.0
        for d in done:
            d(True, msg)

    def connect_failed(self) -> bool:
        """The first connection with the new pair failed: put the old pair back. True if we did."""
        if self.switching is None:
            return False
        done, self.switching = self.switching, None
        key_old, cert_old = _suffixed(self.key_p, ".old"), _suffixed(self.cert_p, ".old")
        if key_old.exists() and cert_old.exists():
            os.replace(cert_old, self.cert_p)
            os.replace(key_old, self.key_p)
        self.relink = True
        self.switching = None
        self._fail("the broker refused the new certificate on reconnect; went back to the current one",
                   done=done)
        return True

    # ------------------------------------------------------------------ words
    def _fail(self, msg: str, done: list[Done] | None = None, retry: float = RETRY_AFTER) -> None:
        waiting = done if done is not None else (self.pending.done if self.pending else []) + self.forced
        self.pending, self.forced = None, []
        _suffixed(self.key_p, ".new").unlink(missing_ok=True)
        _suffixed(self.cert_p, ".new").unlink(missing_ok=True)
        self.next_try = time.monotonic() + retry
        log.warning("certificate renewal: %s", msg)
        again = f"{retry / 60:.0f} minutes" if retry >= 120 else f"{retry:.0f} s"
        self.health.problem("cert:renew", f"certificate renewal: {msg}; the current certificate stays in use "
                            f"and renewal is tried again in {again}", kind="warning")
        self._facts("failed", msg)
        for d in waiting:
            d(False, msg)

    def _facts(self, state: str, detail: str | None = None) -> None:
        self.health.set("certificate_renewal", {"state": state, "detail": detail, "at": time.time()})
