"""The signed envelope and the TUF-like trust store (wire/signed.py): each refusal, in words."""
from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from wire import signed


def _admin_list(root, admins, *, version=1, revoked=(), valid_for=timedelta(days=30), now=None):
    payload = {"keys": [{"name": n, "public_key": signed.public_b64(k.public_key())} for n, k in admins],
               "revoked": [{"name": n, "key_id": signed.key_id(k)} for n, k in revoked]}
    return signed.sign(signed.make_envelope(signed.KIND_ADMIN_KEYS, payload, version=version,
                                            valid_for=valid_for, now=now), root)


@pytest.fixture()
def world():
    root, alice, bob = (Ed25519PrivateKey.generate() for _ in range(3))
    trust = signed.TrustStore(root.public_key())
    assert trust.accept_admin_keys(_admin_list(root, [("alice", alice), ("bob", bob)]), time.time())
    return root, alice, bob, trust


def _doc(key, *, version=1, targets=None, now=None, valid_for=timedelta(hours=1), payload=None):
    return signed.sign(signed.make_envelope("config", payload or {"toml": "rescan_seconds = 5\n"}, version=version,
                                            targets=targets or {"devices": ["pc-1"]}, now=now,
                                            valid_for=valid_for), key)


def test_valid_document_verifies_from_any_json_formatting(world):
    root, alice, _, trust = world
    doc = _doc(alice, version=3, targets={"groups": ["xrd"]})
    pretty = json.dumps(doc, indent=4).encode()     # the wire form need not be canonical
    v = signed.verify(pretty, trust, time.time(), kind="config")
    assert (v.signer, v.version, v.payload["toml"]) == ("alice", 3, "rescan_seconds = 5\n")
    assert v.targets_device("pc-9", ["xrd"]) and not v.targets_device("pc-9", ["sem"])
    assert signed.canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


def test_tampered_payload_is_a_bad_signature(world):
    _, alice, _, trust = world
    doc = _doc(alice)
    doc["payload"]["toml"] = "rescan_seconds = 1\n"
    with pytest.raises(signed.BadSignature, match="changed after signing"):
        signed.verify(signed.canonical_json(doc), trust, time.time())
    doc = _doc(alice)
    doc["targets"] = {"all": True}                   # widening the targets breaks it too
    with pytest.raises(signed.BadSignature):
        signed.verify(doc, trust, time.time())


def test_unknown_key_and_root_key_refused(world):
    root, _, _, trust = world
    with pytest.raises(signed.UnknownKey, match="not in the administrator key list"):
        signed.verify(_doc(Ed25519PrivateKey.generate()), trust, time.time())
    with pytest.raises(signed.UnknownKey, match="root key"):
        signed.verify(_doc(root), trust, time.time())


def test_revoked_key_refused_and_old_list_cannot_be_replayed(world):
    root, alice, bob, trust = world
    old_list = trust.admin_document
    assert trust.accept_admin_keys(_admin_list(root, [("alice", alice)], version=2, revoked=[("bob", bob)]),
                                   time.time())
    with pytest.raises(signed.RevokedKey, match="revoked administrator key 'bob'"):
        signed.verify(_doc(bob), trust, time.time())
    with pytest.raises(signed.StaleVersion, match="replay or downgrade"):
        trust.accept_admin_keys(old_list, time.time())
    # the floor survives a restart (state persisted and re-verified)
    again = signed.TrustStore.from_state(root.public_key(), json.loads(json.dumps(trust.state())), time.time())
    with pytest.raises(signed.RevokedKey):
        signed.verify(_doc(bob), again, time.time())
    assert signed.verify(_doc(alice), again, time.time()).signer == "alice"


def test_admin_list_must_be_root_signed(world):
    _, alice, bob, trust = world
    forged = _admin_list(alice, [("mallory", bob)], version=9)   # an admin cannot promote anyone
    with pytest.raises(signed.UnknownKey, match="not the trusted root"):
        trust.accept_admin_keys(forged, time.time())


def test_times_not_yet_valid_and_expired(world):
    _, alice, _, trust = world
    now = time.time()
    with pytest.raises(signed.NotYetValid, match="not valid before"):
        signed.verify(_doc(alice, now=now + 3600), trust, now)
    with pytest.raises(signed.Expired, match="expired at"):
        signed.verify(_doc(alice, now=now - 7200, valid_for=timedelta(hours=1)), trust, now)


def test_expired_admin_list_freezes_trust():
    root, alice = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    now = time.time()
    trust = signed.TrustStore(root.public_key())
    trust.accept_admin_keys(_admin_list(root, [("alice", alice)], valid_for=timedelta(days=1)), now)
    with pytest.raises(signed.Expired, match="administrator key list expired"):
        signed.verify(_doc(alice, now=now + 2 * 86400), trust, now + 2 * 86400)
    # after a restart too, and the expired list's version still refuses an older one
    later = signed.TrustStore.from_state(root.public_key(), trust.state(), now + 2 * 86400)
    with pytest.raises(signed.Expired, match="administrator key list expired"):
        signed.verify(_doc(alice, now=now + 2 * 86400), later, now + 2 * 86400)
    assert later.admin_version == 1


def test_version_check_refuses_replay_and_downgrade(world):
    _, alice, _, trust = world
    v = signed.verify(_doc(alice, version=4), trust, time.time())
    signed.check_newer(v, 3)
    for applied in (4, 5):
        with pytest.raises(signed.StaleVersion, match="not newer"):
            signed.check_newer(v, applied)


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d.pop("expires"), "has no expires"),
    (lambda d: d.update(extra=1), "unknown fields"),
    (lambda d: d.update(version="7"), "positive whole number"),
    (lambda d: d.update(targets={"all": False}), "targets"),
    (lambda d: d.update(not_before="yesterday"), "UTC time"),
])
def test_malformed_documents_named(world, mutate, words):
    _, alice, _, trust = world
    doc = _doc(alice)
    mutate(doc)
    with pytest.raises(signed.MalformedDocument, match=words):
        signed.verify(doc, trust, time.time())


def test_duplicate_keys_and_oversize_refused(world):
    _, alice, _, trust = world
    raw = signed.canonical_json(_doc(alice))
    dup = raw[:-1] + b',"version":99}'
    with pytest.raises(signed.MalformedDocument, match="twice"):
        signed.verify(dup, trust, time.time())
    with pytest.raises(signed.MalformedDocument, match="limit"):
        signed.verify(b" " * (signed.MAX_ENVELOPE_BYTES + 1), trust, time.time())
    with pytest.raises(signed.MalformedDocument, match="nested too deeply"):
        signed.open_bundle(b"[" * 100_000, trust, time.time())


def test_root_rotation_n_plus_1():
    root1, root2, alice = (Ed25519PrivateKey.generate() for _ in range(3))
    now = time.time()

    def rotation(signer, new, version, self_signer=None):
        payload = {"public_key": signed.public_b64(new.public_key()),
                   "self_signature": signed.root_self_signature(self_signer or new, version)}
        return signed.sign(signed.make_envelope(signed.KIND_ROOT, payload, version=version), signer)

    trust = signed.TrustStore(root1.public_key())
    mallory = Ed25519PrivateKey.generate()
    with pytest.raises(signed.UnknownKey, match="not signed by the trusted root"):
        trust.accept_root_rotation(rotation(mallory, root2, 2), now)
    with pytest.raises(signed.BadSignature, match="new root key itself"):
        trust.accept_root_rotation(rotation(root1, root2, 2, self_signer=mallory), now)
    with pytest.raises(signed.StaleVersion, match="does not follow"):
        trust.accept_root_rotation(rotation(root1, root2, 3), now)
    good = rotation(root1, root2, 2)
    list2 = _admin_list(root2, [("alice", alice)], version=2)
    b = signed.bundle(_doc(alice), admin_keys=list2, roots=[good])
    v, changed = signed.open_bundle(b, trust, now)
    assert changed and v.signer == "alice" and trust.root_version == 2
    # the old root can no longer sign key lists; replaying the rotation is harmless
    with pytest.raises(signed.UnknownKey):
        trust.accept_admin_keys(_admin_list(root1, [("alice", alice)], version=5), now)
    assert trust.accept_root_rotation(good, now) is False
    again = signed.TrustStore.from_state(root1.public_key(), trust.state(), now)
    assert again.root_version == 2 and signed.verify(_doc(alice), again, now).signer == "alice"
