"""Signed envelopes: what a facility administrator sends a device (config, commands), Ed25519-signed.

An envelope is a JSON object::

    {"format": "labedge-signed/1", "kind": "config", "payload": {...},
     "targets": {"devices": ["pc-1"], "groups": ["xrd"]},   # or {"all": true}
     "version": 7, "not_before": "2026-12-01T10:00:00Z", "expires": "2026-12-08T10:00:00Z",
     "key_id": "<32 hex>", "signature": "<base64>"}

The signature covers ``DOMAIN + canonical_json(envelope without "signature")``: sorted keys, UTF-8,
no whitespace. The JSON on the wire may be formatted any way; the verifier re-canonicalises.

Trust is TUF-like, in two roles:

- the **root** key (offline) is pinned on every device. It signs only the administrator key list
  (kind ``admin-keys``) and root rotations (kind ``root``);
- **administrator** keys, listed by name in the root-signed list (with a version and an expiry, so an
  old list cannot be replayed and a frozen one stops working), sign everything else. A key named in
  the list's ``revoked`` field is refused as revoked, one not named at all as unknown.

Root rotation follows the N+1 rule: the document for root version N+1 is signed by root N and carries
a self-signature of the new key, so a device that trusts root N accepts only a new root that both
the old root and the new key's owner signed.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

if TYPE_CHECKING:
    from wire.trust import TrustStore

FORMAT = "labedge-signed/1"
BUNDLE_FORMAT = "labedge-signed-bundle/1"
#: Signatures are over this prefix + the canonical bytes, so they cannot be reused in another protocol.
DOMAIN = b"labedge signed envelope v1\n"
ROOT_SELF_DOMAIN = b"labedge root self-signature v1\n"
#: Generous for a config fragment, small enough that a hostile broker cannot exhaust a device.
MAX_ENVELOPE_BYTES = 128 * 1024
MAX_BUNDLE_BYTES = 512 * 1024
MAX_ROOT_CHAIN = 32
#: Allowed clock difference between the administrator's machine and the device.
CLOCK_SKEW = timedelta(seconds=60)
KIND_ADMIN_KEYS = "admin-keys"
KIND_ROOT = "root"
ROOT_KINDS = (KIND_ADMIN_KEYS, KIND_ROOT)
_FIELDS = ("format", "kind", "payload", "targets", "version", "not_before", "expires", "key_id", "signature")


# ------------------------------------------------------------------------------ errors
class SignedError(Exception):
    """A signed document was refused; ``reason`` is the plain-words reason shown to people."""

    code = "refused"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedDocument(SignedError):
    code = "malformed"


class UnknownKey(SignedError):
    code = "unknown_key"


class RevokedKey(SignedError):
    code = "revoked_key"


class BadSignature(SignedError):
    code = "bad_signature"


class NotYetValid(SignedError):
    code = "not_yet_valid"


class Expired(SignedError):
    code = "expired"


class WrongKind(SignedError):
    code = "wrong_kind"


class StaleVersion(SignedError):
    """Replay or downgrade: the version is not greater than the one already accepted."""

    code = "stale_version"


# ------------------------------------------------------------------------------ encoding
def canonical_json(obj: Any) -> bytes:
    """Sorted keys, UTF-8, no whitespace: the bytes every signature covers."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:  # two readers could disagree about which one counts: refuse both
            raise MalformedDocument(f"the document names {k!r} twice")
        out[k] = v
    return out


def parse_json(data: bytes | str, *, limit: int = MAX_ENVELOPE_BYTES, what: str = "document") -> Any:
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > limit:
        raise MalformedDocument(f"the {what} is {len(raw)} bytes, more than the limit of {limit}")
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates,
                          parse_constant=lambda c: _raise(MalformedDocument(f"the {what} contains {c}")))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedDocument(f"the {what} is not UTF-8 JSON ({exc})") from None
    except RecursionError:  # a few KiB of "[[[[..." must not escape as a crash
        raise MalformedDocument(f"the {what} is nested too deeply") from None


def _raise(exc: Exception) -> Any:
    raise exc


def utc(t: datetime | float | int) -> datetime:
    if isinstance(t, (int, float)):
        return datetime.fromtimestamp(t, timezone.utc)
    if t.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC time")
    return t.astimezone(timezone.utc)


def format_time(t: datetime | float) -> str:
    return utc(t).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s: Any, *, name: str) -> datetime:
    if not isinstance(s, str) or not s.endswith("Z"):
        raise MalformedDocument(f"{name} must be a UTC time like 2026-12-01T10:00:00Z, not {s!r}")
    try:
        return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise MalformedDocument(f"{name} must be a UTC time like 2026-12-01T10:00:00Z, not {s!r}") from None


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """sha256 of the raw 32-byte public key, first 32 hex digits (128 bits)."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return hashlib.sha256(raw_public(pub)).hexdigest()[:32]


def public_b64(key: Ed25519PublicKey) -> str:
    return base64.b64encode(raw_public(key)).decode("ascii")


def public_from_b64(s: Any, *, what: str = "public key") -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(s, validate=True) if isinstance(s, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise MalformedDocument(f"the {what} is not a base64 Ed25519 public key")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_pem(data: bytes, *, what: str = "public key") -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise MalformedDocument(f"the {what} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise MalformedDocument(f"the {what} is not an Ed25519 key")
    return key


# ------------------------------------------------------------------------------ making and signing
def make_envelope(kind: str, payload: Any, *, version: int, targets: dict[str, Any] | None = None,
                  valid_for: timedelta = timedelta(days=7), not_before: datetime | float | None = None,
                  now: datetime | float | None = None) -> dict[str, Any]:
    """An unsigned envelope; ``sign`` adds key_id and signature."""
    start = utc(not_before if not_before is not None else (now if now is not None else datetime.now(timezone.utc)))
    return {"format": FORMAT, "kind": kind, "payload": payload, "targets": targets or {"all": True},
            "version": int(version), "not_before": format_time(start), "expires": format_time(start + valid_for)}


def _signed_part(envelope: dict[str, Any]) -> bytes:
    return DOMAIN + canonical_json({k: v for k, v in envelope.items() if k != "signature"})


def sign(envelope: dict[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """A copy of ``envelope`` with ``key_id`` and ``signature`` set by ``private_key``."""
    out = {k: v for k, v in envelope.items() if k not in ("key_id", "signature")}
    out.setdefault("format", FORMAT)
    out["key_id"] = key_id(private_key)
    out["signature"] = base64.b64encode(private_key.sign(_signed_part(out))).decode("ascii")
    return out


# ------------------------------------------------------------------------------ verifying
@dataclass(frozen=True)
class Verified:
    kind: str
    payload: Any
    targets: dict[str, Any]
    version: int
    not_before: datetime
    expires: datetime
    key_id: str
    signer: str          # the administrator's name from the key list ("root" for root documents)
    document: dict[str, Any] = field(repr=False)

    def targets_device(self, device_id: str, groups: Iterable[str] = ()) -> bool:
        return target_matches(self.targets, device_id, groups)


def target_matches(targets: dict[str, Any], device_id: str, groups: Iterable[str] = ()) -> bool:
    if targets.get("all") is True:
        return True
    if device_id in (targets.get("devices") or []):
        return True
    return bool(set(groups) & set(targets.get("groups") or []))


def _check_shape(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise MalformedDocument("the document is not a JSON object")
    missing = [f for f in _FIELDS if f not in doc]
    if missing:
        raise MalformedDocument("the document has no " + ", ".join(missing))
    extra = sorted(set(doc) - set(_FIELDS))
    if extra:
        raise MalformedDocument("the document has unknown fields: " + ", ".join(extra))
    if doc["format"] != FORMAT:
        raise MalformedDocument(f"the document's format is {doc['format']!r}, expected {FORMAT!r}")
    if not isinstance(doc["kind"], str) or not doc["kind"]:
        raise MalformedDocument("the document's kind is not a name")
    if type(doc["version"]) is not int or doc["version"] < 1:
        raise MalformedDocument("the document's version is not a positive whole number")
    t = doc["targets"]
    if not isinstance(t, dict) or set(t) - {"all", "devices", "groups"} or \
            any(not isinstance(t.get(k, []), list) or not all(isinstance(x, str) for x in t.get(k, []))
                for k in ("devices", "groups")) or t.get("all", True) is not True:
        raise MalformedDocument("the document's targets must be {\"all\": true} or lists of devices and groups")
    if not isinstance(doc["key_id"], str) or not isinstance(doc["signature"], str):
        raise MalformedDocument("the document's key_id and signature must be text")
    parse_time(doc["not_before"], name="not_before")
    parse_time(doc["expires"], name="expires")
    return doc


def _check_signature(doc: dict[str, Any], key: Ed25519PublicKey, who: str) -> None:
    try:
        sig = base64.b64decode(doc["signature"], validate=True)
        key.verify(sig, _signed_part(doc))
    except (binascii.Error, ValueError, InvalidSignature):
        raise BadSignature(f"the signature does not match the document (signed as {who}); "
                           "it was changed after signing or signed by another key") from None


def _check_times(doc: dict[str, Any], now: datetime, what: str = "the document") -> tuple[datetime, datetime]:
    nb = parse_time(doc["not_before"], name="not_before")
    ex = parse_time(doc["expires"], name="expires")
    if now + CLOCK_SKEW < nb:
        raise NotYetValid(f"{what} is not valid before {doc['not_before']} (the device's clock says "
                          f"{format_time(now)})")
    if now - CLOCK_SKEW >= ex:
        raise Expired(f"{what} expired at {doc['expires']} (the device's clock says {format_time(now)})")
    return nb, ex


def verify(envelope_bytes: bytes | str | dict[str, Any], trust: TrustStore, now: datetime | float, *,
           kind: str | None = None) -> Verified:
    """Check an administrator-signed envelope against ``trust`` at time ``now``.

    Raises a SignedError subclass with the reason in words: malformed, unknown key, revoked key,
    bad signature, not yet valid, expired, wrong kind. Version and target checks belong to the caller
    (it knows what it applied and who it is); ``Verified.targets_device`` and ``check_newer`` help.
    """
    now = utc(now)
    doc = _check_shape(envelope_bytes if isinstance(envelope_bytes, dict) else parse_json(envelope_bytes))
    if kind is not None and doc["kind"] != kind:
        raise WrongKind(f"expected a {kind!r} document, got {doc['kind']!r}")
    kid = doc["key_id"]
    if doc["kind"] in ROOT_KINDS:
        raise WrongKind(f"a {doc['kind']!r} document is a trust document, not an administrator's")
    if trust.admin_expires is not None and now - CLOCK_SKEW >= trust.admin_expires:
        raise Expired(f"the administrator key list expired at {format_time(trust.admin_expires)}; "
                      "the facility must sign a new one with the root key")
    if kid in trust.revoked:
        raise RevokedKey(f"signed with the revoked administrator key {trust.revoked[kid]!r} ({kid})")
    admin = trust.admins.get(kid)
    if admin is None:
        if kid == trust.root_key_id:
            raise UnknownKey("signed with the root key, which signs only key lists, never configs or commands")
        raise UnknownKey(f"signed with key {kid}, which is not in the administrator key list "
                         f"(version {trust.admin_version})")
    _check_signature(doc, admin.public_key, f"administrator {admin.name!r}")
    nb, ex = _check_times(doc, now)
    return Verified(kind=doc["kind"], payload=doc["payload"], targets=doc["targets"], version=doc["version"],
                    not_before=nb, expires=ex, key_id=kid, signer=admin.name, document=doc)


def check_newer(verified: Verified, applied_version: int) -> None:
    if verified.version <= applied_version:
        raise StaleVersion(f"version {verified.version} is not newer than the applied version {applied_version} "
                           "(a replay or a downgrade)")


def __getattr__(name: str) -> Any:
    """``TrustStore``, ``AdminKey`` and ``root_self_signature`` live in wire/trust.py (imported lazily:
    it imports this module)."""
    if name in ("TrustStore", "AdminKey", "root_self_signature"):
        from wire import trust
        return getattr(trust, name)
    raise AttributeError(f"module 'wire.signed' has no attribute {name!r}")


# ------------------------------------------------------------------------------ bundles
def bundle(document: dict[str, Any], *, admin_keys: dict[str, Any] | None,
           roots: list[dict[str, Any]] | None = None) -> bytes:
    """What travels: the signed document plus the trust documents a device may not have yet."""
    return canonical_json({"format": BUNDLE_FORMAT, "document": document,
                           "admin_keys": admin_keys, "roots": list(roots or [])})


def open_bundle(data: bytes | str, trust: TrustStore, now: datetime | float, *,
                kind: str | None = None) -> tuple[Verified, bool]:
    """Take in the bundle's root rotations and key list (if newer), then verify its document.

    Returns (verified document, whether ``trust`` changed: the caller should persist ``trust.state()``).
    An older key list in a bundle is ignored (the device keeps its newer one), never an error.
    """
    b = parse_json(data, limit=MAX_BUNDLE_BYTES, what="bundle")
    if not isinstance(b, dict) or b.get("format") != BUNDLE_FORMAT or not isinstance(b.get("document"), dict):
        raise MalformedDocument(f"not a {BUNDLE_FORMAT} bundle")
    roots = b.get("roots") or []
    if not isinstance(roots, list) or len(roots) > MAX_ROOT_CHAIN:
        raise MalformedDocument("the bundle's root chain is not a short list")
    changed = False
    for doc in roots:
        changed |= trust.accept_root_rotation(doc, now)
    if b.get("admin_keys") is not None:
        try:
            changed |= trust.accept_admin_keys(b["admin_keys"], now)
        except StaleVersion:
            pass  # the device already holds a newer list; the document is checked against that one
    return verify(b["document"], trust, now, kind=kind), changed
