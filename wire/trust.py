"""The trust a device holds: the pinned root (possibly rotated, N+1) and the root-signed key list.

Split from wire/signed.py (which re-exports ``TrustStore``, ``AdminKey`` and ``root_self_signature``);
the rules are described there.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from wire.signed import (CLOCK_SKEW, KIND_ADMIN_KEYS, KIND_ROOT, MAX_ROOT_CHAIN, ROOT_SELF_DOMAIN, BadSignature,
                         Expired, MalformedDocument, NotYetValid, StaleVersion, UnknownKey, WrongKind,
                         _check_shape, _check_signature, _check_times, canonical_json, key_id, parse_json,
                         parse_time, public_b64, public_from_b64, utc)


@dataclass(frozen=True)
class AdminKey:
    name: str
    key_id: str
    public_key: Ed25519PublicKey


class TrustStore:
    """The pinned root (possibly rotated) and the newest root-signed administrator key list.

    Build it with ``TrustStore(root_public_key)``; feed it what arrives with ``accept_root_rotation``
    and ``accept_admin_keys`` (each refuses an older or equal version). ``state()`` / ``from_state``
    let a device remember what it accepted, so a replayed old list with a revoked key is refused
    after a restart too.
    """

    def __init__(self, root: Ed25519PublicKey, *, root_version: int = 1) -> None:
        self.root = root
        self.root_version = root_version
        self.admin_version = 0
        self.admin_expires: datetime | None = None
        self.admins: dict[str, AdminKey] = {}
        self.revoked: dict[str, str] = {}          # key_id -> name
        self.root_documents: list[dict[str, Any]] = []
        self.admin_document: dict[str, Any] | None = None

    @property
    def root_key_id(self) -> str:
        return key_id(self.root)

    # -- root rotation (N+1) -------------------------------------------------------------
    def accept_root_rotation(self, data: bytes | dict[str, Any], now: datetime | float) -> bool:
        """Accept root version N+1 signed by the current root N and by the new key itself.

        Returns False for a rotation already applied (version <= current), so a chain can be replayed
        harmlessly; raises for anything that does not chain.
        """
        now = utc(now)
        doc = _check_shape(parse_json(data) if not isinstance(data, dict) else data)
        if doc["kind"] != KIND_ROOT:
            raise WrongKind(f"expected a root rotation, got a {doc['kind']!r} document")
        if doc["version"] <= self.root_version:
            return False
        if doc["version"] != self.root_version + 1:
            raise StaleVersion(f"root version {doc['version']} does not follow the trusted root version "
                               f"{self.root_version} (each rotation must be signed by the root before it)")
        if doc["key_id"] != self.root_key_id:
            raise UnknownKey(f"root rotation to version {doc['version']} is not signed by the trusted root "
                             f"(key {doc['key_id']}, trusted {self.root_key_id})")
        _check_signature(doc, self.root, "root")
        p = doc["payload"]
        if not isinstance(p, dict) or set(p) != {"public_key", "self_signature"}:
            raise MalformedDocument("a root rotation's payload must hold public_key and self_signature")
        new = public_from_b64(p["public_key"], what="new root key")
        try:
            new.verify(base64.b64decode(p["self_signature"], validate=True), _root_self_message(new, doc["version"]))
        except (binascii.Error, ValueError, InvalidSignature):
            raise BadSignature(f"root rotation to version {doc['version']} is not signed by the new root key "
                               "itself") from None
        # expiry matters less for a rotation (devices may be offline for long), but a not-yet-valid
        # one was made for the future: refuse it.
        nb = parse_time(doc["not_before"], name="not_before")
        if now + CLOCK_SKEW < nb:
            raise NotYetValid(f"root rotation is not valid before {doc['not_before']}")
        self.root, self.root_version = new, doc["version"]
        self.root_documents.append(doc)
        # the old root's admin list is no longer vouched for: the new root must sign one
        self.admin_version, self.admin_expires, self.admins, self.revoked = 0, None, {}, {}
        self.admin_document = None
        return True

    # -- administrator key list -----------------------------------------------------------
    def accept_admin_keys(self, data: bytes | dict[str, Any], now: datetime | float) -> bool:
        """Accept a newer root-signed administrator key list. False if it is the one already held."""
        now = utc(now)
        doc = _check_shape(parse_json(data, what="administrator key list") if not isinstance(data, dict) else data)
        if doc["kind"] != KIND_ADMIN_KEYS:
            raise WrongKind(f"expected an administrator key list, got a {doc['kind']!r} document")
        if doc["key_id"] != self.root_key_id:
            raise UnknownKey(f"the administrator key list is signed by key {doc['key_id']}, which is not the "
                             f"trusted root ({self.root_key_id})")
        _check_signature(doc, self.root, "root")
        if doc["version"] == self.admin_version and self.admin_document is not None \
                and canonical_json(doc) == canonical_json(self.admin_document):
            return False
        if doc["version"] <= self.admin_version:
            raise StaleVersion(f"administrator key list version {doc['version']} is not newer than the "
                               f"accepted version {self.admin_version} (replay or downgrade)")
        _, expires = _check_times(doc, now, "the administrator key list")
        admins, revoked = _parse_admin_payload(doc["payload"])
        self.admin_version, self.admin_expires = doc["version"], expires
        self.admins, self.revoked, self.admin_document = admins, revoked, doc
        return True

    # -- persistence -----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"roots": list(self.root_documents), "admin_keys": self.admin_document}

    @classmethod
    def from_state(cls, pinned_root: Ed25519PublicKey, state: dict[str, Any] | None,
                   now: datetime | float) -> "TrustStore":
        """Rebuild from the pinned root and what was accepted before (re-verified, never just trusted)."""
        ts = cls(pinned_root)
        state = state or {}
        for doc in (state.get("roots") or [])[:MAX_ROOT_CHAIN]:
            ts.accept_root_rotation(doc, now)
        if state.get("admin_keys"):
            try:
                ts.accept_admin_keys(state["admin_keys"], now)
            except Expired:
                # keep the version floor so an older list is still refused; no key is trusted, and
                # verify says the list expired
                ts.admin_version = int(state["admin_keys"]["version"])
                ts.admin_expires = parse_time(state["admin_keys"]["expires"], name="expires")
        return ts


def _root_self_message(new: Ed25519PublicKey, version: int) -> bytes:
    return ROOT_SELF_DOMAIN + canonical_json({"public_key": public_b64(new), "version": version})


def root_self_signature(new_root: Ed25519PrivateKey, version: int) -> str:
    return base64.b64encode(new_root.sign(_root_self_message(new_root.public_key(), version))).decode("ascii")


def _parse_admin_payload(p: Any) -> tuple[dict[str, AdminKey], dict[str, str]]:
    if not isinstance(p, dict) or not isinstance(p.get("keys"), list) or not isinstance(p.get("revoked", []), list):
        raise MalformedDocument("the administrator key list's payload must hold a list of keys and of revoked keys")
    admins: dict[str, AdminKey] = {}
    for i, k in enumerate(p["keys"]):
        if not isinstance(k, dict) or not isinstance(k.get("name"), str):
            raise MalformedDocument(f"administrator key {i} has no name")
        pub = public_from_b64(k.get("public_key"), what=f"administrator key {k['name']!r}")
        admins[key_id(pub)] = AdminKey(k["name"], key_id(pub), pub)
    revoked: dict[str, str] = {}
    for r in p.get("revoked", []):
        if not isinstance(r, dict) or not isinstance(r.get("key_id"), str):
            raise MalformedDocument("a revoked entry has no key_id")
        revoked[r["key_id"]] = str(r.get("name", "?"))
        admins.pop(r["key_id"], None)
    return admins, revoked
