"""Finding 2: nobody but the CA holder can become the receiver, and a device deletes its spool copy
only on a receipt signed by a receiver certificate of its CA (a forged "stored" changes nothing)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agent.config import load_config
from agent.runner import Agent
from facility import pki as P
from sec_helpers import RawClient
from transport_helpers import (REPO, ReceiverProc, agent_config, assert_exactly_once, make_packages, stored,
                               wait_for)


def _labedge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60)


def test_sign_csr_refuses_reserved_and_already_issued_names(tmp_path):
    ca = tmp_path / "ca"
    assert _labedge("pki", "init", "--out", str(ca)).returncode == 0
    for name in ("labedge-receiver", "Labedge-Receiver-2", "labedge-admin", "dev-7"):
        r = _labedge("enroll", "--name", name, "--out", str(tmp_path / name))
        assert r.returncode == 0, r.stderr
    for name in ("labedge-receiver", "Labedge-Receiver-2", "labedge-admin"):
        r = _labedge("pki", "sign-csr", "--ca", str(ca), "--csr", str(tmp_path / name / f"{name}.csr"),
                     "--out", str(tmp_path / "signed"))
        assert r.returncode == 2 and "reserved" in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert not (tmp_path / "signed" / f"{name}.pem").exists()
    csr = str(tmp_path / "dev-7" / "dev-7.csr")
    assert _labedge("pki", "sign-csr", "--ca", str(ca), "--csr", csr, "--out", str(tmp_path / "s1")).returncode == 0
    r = _labedge("pki", "sign-csr", "--ca", str(ca), "--csr", csr, "--out", str(tmp_path / "s2"))
    assert r.returncode == 2 and "already issued" in r.stderr and "--replace" in r.stderr, r.stderr
    r = _labedge("pki", "sign-csr", "--ca", str(ca), "--csr", csr, "--out", str(tmp_path / "s2"), "--replace")
    assert r.returncode == 0, r.stderr


def test_forged_stored_does_not_delete_and_the_real_receiver_still_delivers(tmp_path, broker, pki):
    # What the old `sign-csr` handed out: a certificate NAMED like the receiver, without its key usage.
    rogue_cert, rogue_key = P.issue(pki.ca_dir, "labedge-receiver", tmp_path / "rogue", role="device")
    cfg = agent_config(tmp_path / "agent", broker.url, pki, device="dev-01")
    expected = make_packages(cfg, [20_000, 20_000, 20_000])
    spool = load_config(cfg, check_watch_folders=False).spool_dir / "packages"
    rogue = RawClient(broker.port, pki.ca, rogue_cert, rogue_key, client_id="labedge-receiver")
    forged: list[str] = []

    def forge(_c, _u, msg) -> None:  # answer every offer with "stored", digests copied from the offer
        parts = msg.topic.split("/")
        if parts[-1] != "offer":
            return
        offer = json.loads(msg.payload)
        digest = {f[0]: f[2] for f in offer["files"]}
        body = {"v": 1, "type": "stored", "package_id": parts[3],
                "manifest_sha256": digest["manifest-sha256.txt"], "tagmanifest_sha256": digest["tagmanifest-sha256.txt"],
                "receiver_cert": rogue_cert.read_text(), "sig": "AAAA"}
        rogue.client.publish(f"rde/{parts[1]}/down/{parts[3]}", json.dumps(body), qos=1)
        forged.append(parts[3])

    rogue.client.on_message = forge
    rogue.subscribe("rde/+/up/#")
    wait_for(lambda: rogue.subacks, 10, "the rogue's SUBACK")
    agent = Agent(load_config(cfg))
    agent.start()
    try:
        wait_for(lambda: len(set(forged)) == 3, 30, "the rogue to answer every package's offer")
        wait_for(lambda: agent.health.snapshot()[1]["problems"].get("upload:receipt"), 10, "the warning")
        counts = agent.store.counts()
        assert counts.get("delivered", 0) == 0, counts
        assert all((spool / pid / "bagit.txt").exists() for pid in expected), "a spool copy was deleted"
        rogue.close()
        store = tmp_path / "store"
        rx = ReceiverProc(tmp_path / "rx", broker, pki, store).start_connected()
        try:
            wait_for(lambda: agent.store.counts().get("delivered", 0) == 3, 40, "the real receiver's receipts")
            assert_exactly_once(store, expected)
        finally:
            rx.kill()
    finally:
        assert agent.stop() == []
        rogue.close()
