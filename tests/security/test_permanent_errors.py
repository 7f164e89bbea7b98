"""Finding 4: what no retry can fix is "rejected" with a reason (never "busy" forever); a 1,500-file
package stores under a 1,024-descriptor limit; a package the receiver cannot take now does not hold
the upload slot the others need."""
from __future__ import annotations

import hashlib
import json
import resource
import unicodedata

import pytest
from diskfull import mount_tmpfs, unmount

from agent.config import load_config
from agent.package.bag import write_bag_tags
from agent.package.ids import new_package_id
from agent.runner import Agent
from agent.state.store import FileRecord, StateStore
from sec_helpers import Device, offer_payload
from testpaths import in_ci
from transport_helpers import (ReceiverProc, agent_config, assert_exactly_once, make_packages, stored,
                               wait_for)

ZERO = hashlib.sha256(b"").hexdigest()
TAGS = [(t, 100, ZERO) for t in ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "tagmanifest-sha256.txt")]
NFC = unicodedata.normalize("NFC", "data/raw/é.txt")
NFD = unicodedata.normalize("NFD", "data/raw/é.txt")
CASES = {
    "long-name": ([("data/raw/" + "測" * 100 + ".txt", 10, ZERO)], "255"),
    "file-and-folder": ([("data/raw/a", 10, ZERO), ("data/raw/a/b", 10, ZERO)], "both a file and a folder"),
    "nfc-nfd": ([(NFC, 10, ZERO), (NFD, 10, ZERO)], "listed twice"),
}


def test_names_no_file_system_takes_are_rejected_with_a_reason(tmp_path, broker, pki):
    rx = ReceiverProc(tmp_path / "rx", broker, pki, tmp_path / "store").start_connected()
    dev = Device(broker.port, pki, "dev-01")
    try:
        for n, (name, (files, why)) in enumerate(CASES.items()):
            pid = f"20261201T00000000{n}Z-0000000{n}"
            dev.offer(pid, offer_payload(pid, 65536, TAGS + files))
            wait_for(lambda: dev.last(pid), 10, f"the answer to the {name} offer")
            answer = dev.last(pid)
            assert answer["type"] == "rejected" and why in answer["reason"], (name, answer)
    finally:
        dev.close()
        rx.kill()


def _many_file_package(cfg_path, n_files: int) -> dict[str, str]:
    cfg = load_config(cfg_path, check_watch_folders=False)
    pid = new_package_id()
    work = cfg.spool_dir / "packages" / pid
    files = {f"data/raw/frame-{i:05d}.tif": f"frame {i}\n".encode() * 3 for i in range(n_files)}
    files["data/raw/sample.bin"] = b"the measurement\n"
    files.update({"data/invoice/invoice.json": json.dumps({"datasetId": "x", "basic": {"dataName": "p"}}).encode(),
                  "data/tasksupport/invoice.schema.json": b'{"type": "object"}',
                  "data/labedge/provenance.json": json.dumps({"package_id": pid, "sources": []}).encode()})
    rows = []
    for rel, data in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_bytes(data)
        rows.append((rel, hashlib.sha256(data).hexdigest(), len(data)))
    write_bag_tags(work, rows, {"External-Identifier": pid, "Source-Organization": cfg.device_id})
    store = StateStore(cfg.state_db)
    try:
        store.add_package(package_id=pid, instrument_id="inst", path=str(work), nbytes=sum(map(len, files.values())),
                          files=[FileRecord(f"/src/{pid}", 1, 0, ZERO)])
    finally:
        store.close()
    return {pid: hashlib.sha256(files["data/raw/sample.bin"]).hexdigest()}


def test_1500_file_package_is_stored_under_a_1024_descriptor_limit(tmp_path, broker, pki):
    store = tmp_path / "store"
    rx = ReceiverProc(tmp_path / "rx", broker, pki, store).start_connected()
    resource.prlimit(rx.proc.pid, resource.RLIMIT_NOFILE, (1024, 1024))
    cfg = agent_config(tmp_path / "agent", broker.url, pki)
    expected = _many_file_package(cfg, 1500)
    agent = Agent(load_config(cfg))
    agent.start()
    try:
        wait_for(lambda: agent.store.counts().get("delivered") or agent.store.counts().get("failed"), 50,
                 "the 1,500-file package to be delivered")
        assert agent.store.counts().get("delivered") == 1, (agent.store.counts(), rx.text()[-2000:])
    finally:
        assert agent.stop() == []
        rx.kill()
    assert_exactly_once(store, expected)
    assert "Too many open files" not in rx.text()


def test_a_package_the_receiver_cannot_take_now_does_not_starve_the_others(tmp_path, broker, pki):
    store = tmp_path / "store"
    if not mount_tmpfs(store, "8m"):
        if in_ci():
            pytest.fail("this test needs root to mount a small tmpfs")
        pytest.skip("mounting a tmpfs needs root")
    try:
        rx = ReceiverProc(tmp_path / "rx", broker, pki, store, min_free_bytes=1024 * 1024,
                          busy_retry_seconds=30).start_connected()
        cfg = agent_config(tmp_path / "agent", broker.url, pki, parallel=1)
        big = make_packages(cfg, [12 * 1024 * 1024], seed=1)   # oldest: first in the queue, never fits
        small = make_packages(cfg, [20_000, 20_000, 20_000], seed=2)
        agent = Agent(load_config(cfg))
        agent.start()
        try:
            wait_for(lambda: len(stored(store)) == 3, 40, "the small packages to arrive past the busy one")
            assert set(stored(store)) == set(small)
            assert agent.store.package(next(iter(big))).state == "uploading"  # kept, not failed
        finally:
            assert agent.stop() == []
            rx.kill()
    finally:
        unmount(store)
