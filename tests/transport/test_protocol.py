"""Protocol encodings and the receiver's partial store, without a broker."""
from __future__ import annotations

import hashlib
import json
import os
import random
import time

import pytest

from agent.package.bag import write_bag_tags
from wire import protocol as P
from facility.store import PackageInvalid, Partial, expire_partials, final_dir
from agent.transport.transfer import Transfer, bag_files

PID = "20261122T052501123Z-1a2b3c4d"


@pytest.mark.parametrize("path", ["../x", "data/../x", "/etc/passwd", "data/a\\b", "data/c:x", "data/a/",
                                  "data/x. ", "other/x", "data", "data//x", "data/\x01", "C:/x", ""])
def test_hostile_paths_are_refused(path):
    with pytest.raises(P.ProtocolError):
        P.safe_rel_path(path)


@pytest.mark.parametrize("path", ["bagit.txt", "tagmanifest-sha256.txt", "data/raw/scan 01.ras", "data/raw/ü.txt"])
def test_normal_paths_pass(path):
    assert P.safe_rel_path(path) == path


def _offer(files, cs=P.MIN_CHUNK_SIZE):
    return P.make_offer(PID, cs, [P.FileEntry(p, s, "0" * 64) for p, s in files])


TAGS = [("bagit.txt", 5), ("bag-info.txt", 3), ("manifest-sha256.txt", 0), ("tagmanifest-sha256.txt", 2)]


def test_parse_offer_checks_tag_duplicates_and_limits():
    o = _offer(TAGS + [("data/a", 10)])
    assert P.parse_offer(PID, o.to_json(7), max_bytes=100).tag == o.tag
    with pytest.raises(P.ProtocolError, match="exceeds"):
        P.parse_offer(PID, o.to_json(), max_bytes=10)
    msg = json.loads(o.to_json())
    msg["files"][4][1] = 11  # content changed, tag not
    with pytest.raises(P.ProtocolError, match="tag"):
        P.parse_offer(PID, json.dumps(msg).encode(), max_bytes=100)
    dup = _offer(TAGS + [("data/a", 1), ("data/A", 1)])
    with pytest.raises(P.ProtocolError, match="twice"):
        P.parse_offer(PID, dup.to_json(), max_bytes=100)
    with pytest.raises(P.ProtocolError, match="tag file"):
        P.parse_offer(PID, _offer([("data/a", 1)]).to_json(), max_bytes=100)
    with pytest.raises(P.ProtocolError, match="topic"):
        P.parse_offer("20261122T052501123Z-00000000", o.to_json(), max_bytes=100)


def test_chunks_cover_the_concatenated_files_exactly():
    rnd = random.Random(3)
    for _ in range(50):
        sizes = [rnd.choice([0, 1, 3, 7, 64, 100]) for _ in range(rnd.randint(1, 8))]
        o = _offer([(f"data/f{i}", s) for i, s in enumerate(sizes)], cs=rnd.choice([1, 5, 16, 64]))
        seen = [0] * len(sizes)
        for seq in range(o.chunks):
            assert sum(n for _, _, n in o.pieces(seq)) == o.chunk_len(seq)
            for i, off, n in o.pieces(seq):
                assert off == seen[i]
                seen[i] += n
        assert seen == sizes


def test_corrupted_chunk_is_detected_and_ranges_round_trip():
    msg = bytearray(P.encode_chunk(b"12345678", 3, b"hello"))
    assert P.decode_chunk(bytes(msg))[1] == 3
    msg[-1] ^= 1
    with pytest.raises(P.ProtocolError, match="sha256"):
        P.decode_chunk(bytes(msg))
    assert P.to_ranges([5, 1, 2, 3, 9]) == [[1, 4], [5, 6], [9, 10]]
    assert list(P.iter_ranges([[1, 4], [9, 10]], 10)) == [1, 2, 3, 9]
    with pytest.raises(P.ProtocolError):
        list(P.iter_ranges([[1, 11]], 10))


def test_topics_name_the_device_and_refuse_junk():
    assert P.parse_up_topic("rde", P.chunk_topic("rde", "dev-01", PID)) == ("dev-01", PID, "chunk")
    for bad in ["rde/dev-01/up/notanid/chunk", "rde/../up/" + PID + "/chunk", "rde/dev-01/up/" + PID + "/x",
                "other/dev-01/up/" + PID + "/offer"]:
        with pytest.raises(P.ProtocolError):
            P.parse_up_topic("rde", bad)


# ------------------------------------------------------------------------------ partial store
def make_bag(root, payload: bytes, *, bad_manifest: bool = False):
    bag = root / PID
    files = {"data/raw/x.bin": payload, "data/invoice/invoice.json": b"{}",
             "data/tasksupport/invoice.schema.json": b"{}",
             "data/labedge/provenance.json": json.dumps({"sources": []}).encode()}
    rows = []
    for rel, data in files.items():
        (bag / rel).parent.mkdir(parents=True, exist_ok=True)
        (bag / rel).write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        rows.append((rel, "0" * 64 if bad_manifest and rel.endswith("x.bin") else digest, len(data)))
    write_bag_tags(bag, rows, {})
    return bag


def test_two_receivers_share_one_partial_and_store_once(tmp_path):
    bag = make_bag(tmp_path / "spool", os.urandom(50_000))
    t = Transfer.open(PID, bag, P.MIN_CHUNK_SIZE)
    store = tmp_path / "store"
    raw = t.offer.to_json()
    a = Partial.open_for_offer(store, "dev-01", t.offer, raw, "rx-a")
    b = Partial.open_for_offer(store, "dev-01", t.offer, raw, "rx-b")
    for seq in range(t.offer.chunks):  # a share group alternates messages between members
        _, s, data = P.decode_chunk(bytes(t.read_chunk_message(seq)))
        (a if seq % 2 else b).write_chunk(s, data)
    assert not a.complete and not b.complete
    a.refresh()
    assert a.complete and a.missing() == []
    digests = a.finalize()
    assert digests and digests["manifest_sha256"] == hashlib.sha256((bag / "manifest-sha256.txt").read_bytes()).hexdigest()
    assert b.finalize() == digests  # the other one finds it stored: no second copy
    final = final_dir(store, "dev-01", PID)
    assert (final / "data/raw/x.bin").read_bytes() == (bag / "data/raw/x.bin").read_bytes()
    assert [p.name for p in store.glob("dev-01/*/*/*")] == [PID]
    assert not (store / ".partial" / "dev-01" / PID).exists()


def test_complete_but_invalid_bag_is_rejected_and_discarded(tmp_path):
    bag = make_bag(tmp_path / "spool", b"x" * 1000, bad_manifest=True)
    files = bag_files(bag)
    t = Transfer(PID, bag, P.make_offer(PID, P.MIN_CHUNK_SIZE, files))
    store = tmp_path / "store"
    p = Partial.open_for_offer(store, "dev-01", t.offer, t.offer.to_json(), "rx")
    for seq in range(t.offer.chunks):
        _, s, data = P.decode_chunk(bytes(t.read_chunk_message(seq)))
        p.write_chunk(s, data)
    with pytest.raises(PackageInvalid, match="x.bin"):
        p.finalize()
    assert not final_dir(store, "dev-01", PID).exists()
    assert not p.dir.exists()


def test_abandoned_partials_expire(tmp_path):
    bag = make_bag(tmp_path / "spool", b"y" * 100)
    t = Transfer.open(PID, bag, P.MIN_CHUNK_SIZE)
    store = tmp_path / "store"
    p = Partial.open_for_offer(store, "dev-01", t.offer, t.offer.to_json(), "rx")
    p.close()
    assert expire_partials(store, 3600) == []
    old = time.time() - 7200
    for f in [p.dir, *p.dir.iterdir()]:
        os.utime(f, (old, old))
    assert expire_partials(store, 3600) == [f"dev-01/{PID}"]
    assert not p.dir.exists()


def test_receiver_config_names_unknown_keys_and_defaults_client_id_to_cn(tmp_path, pki):
    from agent.config import ConfigError
    from facility.receiver_config import load_receiver_config
    cert, key = pki.certs["labedge-receiver"]
    base = (f'broker = "mqtts://localhost:8883"\nca_file = "{pki.ca}"\ncert_file = "{cert}"\nkey_file = "{key}"\n'
            f'store_dir = "{tmp_path / "store"}"\n')
    p = tmp_path / "rx.toml"
    p.write_text(base + "windw = 3\n")
    with pytest.raises(ConfigError, match="unknown key 'windw'"):
        load_receiver_config(p)
    p.write_text(base.replace("mqtts://", "mqtt://"))
    with pytest.raises(ConfigError, match="broker"):
        load_receiver_config(p)
    p.write_text(base)
    cfg = load_receiver_config(p)
    assert cfg.client_id == "labedge-receiver" and cfg.share_group == "labedge" and cfg.session_expiry == 0
