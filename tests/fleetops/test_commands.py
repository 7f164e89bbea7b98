"""Remote commands against the shipped broker config and real agents: each reaches only its target and
its result comes back; forged, misaddressed, expired and replayed commands do nothing; a diagnostics
bundle arrives as a verified package with no secret inside."""
from __future__ import annotations

import json
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest

from agent.config import load_config
from agent.sheets.pages import status_lines
from facility.keys import PassphraseSource, Signer, init_keys
from fleetops_helpers import Facility, MqttAs, device_identity, with_trust_root
from transport_helpers import AgentProc, ReceiverProc, agent_config, stored, wait_for
from tray.state import tray_state
from wire import commands as C
from wire import signed, topics


def start_agent(tmp: Path, broker, pki, fac: Facility, device: str) -> AgentProc:
    cfg = with_trust_root(agent_config(tmp / device, broker.url, pki, device=device), fac.keys.root_pub)
    agent = AgentProc(cfg).start()
    wait_for(lambda: "connected to " in agent.text() or not agent.alive(), 30, f"{device} to connect")
    assert agent.alive(), agent.text()[-2000:]
    return agent


@pytest.fixture()
def fleet(tmp_path, broker, pki):
    fac = Facility(tmp_path / "facility", broker, pki)
    agents = {d: start_agent(tmp_path, broker, pki, fac, d) for d in ("dev-01", "dev-02")}
    yield fac, agents
    for a in agents.values():
        a.kill(signal.SIGTERM)


def test_pause_reaches_only_its_target_shows_the_reason_and_resume_undoes_it(fleet) -> None:
    fac, agents = fleet
    out = fac.command("dev-01", "pause", "--reason", "vacuum pump service until 14:00", "--wait", "20")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "dev-01: done: collection paused by the facility: vacuum pump service until 14:00" in out.stdout
    st1, st2 = agents["dev-01"].status(), agents["dev-02"].status()
    assert st1["control"] == {"paused": True, "by": "facility", "reason": "vacuum pump service until 14:00",
                              "words": "paused by the facility: vacuum pump service until 14:00"}
    assert st2["control"]["paused"] is False, "a command for dev-01 reached dev-02"
    # the one summary the tray, the local page and `labedge status` show
    assert st1["summary"]["state"] == "paused"
    assert st1["summary"]["reason"] == "by the facility: vacuum pump service until 14:00"
    assert "施設による一時停止：vacuum pump service until 14:00" == st1["summary"]["ja"]["reason"]
    tray = tray_state(st1)
    assert tray.level == "paused" and "by the facility: vacuum pump service" in tray.tooltip
    # when something more urgent is shown first, the page still lists the facility's reason
    urgent = {**st1, "summary": {**st1["summary"], "state": "error"}}
    assert any("Paused by the facility: vacuum pump service until 14:00" in t for _k, t in status_lines(urgent, "en"))

    out = fac.command("dev-01", "dev-02", "resume", "--wait", "20")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count(": done: collection resumed") == 2
    assert agents["dev-01"].status()["control"]["paused"] is False


def test_rescan_and_retry_results_come_back_and_an_unknown_device_fails_the_wait(fleet) -> None:
    fac, agents = fleet
    out = fac.command("dev-02", "rescan", "--wait", "20")
    assert out.returncode == 0 and "dev-02: done: rescan started for 1 instrument(s): inst" in out.stdout, out.stdout
    out = fac.command("dev-01", "nobody-here", "retry", "--wait", "5")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "dev-01: done: 0 failed package(s) put back in the upload queue" in out.stdout
    assert "nobody-here: NOT SENT: no device of this name listens" in out.stdout


def _signed_command(signer: Signer, device: str, cmd_id: str, action: str, reason: str = "", *,
                    not_before: float | None = None, valid_for: float = 300) -> bytes:
    env = signed.make_envelope(C.KIND, C.command_payload(cmd_id, action, {"reason": reason} if reason else {}),
                               version=int(time.time() * 1000), targets={"devices": [device]},
                               valid_for=timedelta(seconds=valid_for), not_before=not_before)
    return signed.bundle(signed.sign(env, signer.key), admin_keys=signer.admin_keys, roots=signer.roots)


def test_forged_misaddressed_expired_and_replayed_commands_do_nothing(fleet, tmp_path, pki, broker) -> None:
    fac, agents = fleet
    dev = agents["dev-01"]
    prefix = "rde"
    admin = MqttAs(broker, pki, fac.cert, fac.key, [topics.command_result_filter(prefix, "dev-01")])
    try:
        def send(payload: bytes, cmd_id: str, n: int = 1) -> list[dict]:
            assert admin.publish(topics.command_topic(prefix, "dev-01", cmd_id), payload) < 0x80
            return admin.result(cmd_id, n)

        # 1. signed by a key of another root (a compromised broker can make keys, not the facility's)
        import os
        os.environ.update(LABEDGE_ROOT_PASSPHRASE="other-root-pass", LABEDGE_SIGNING_PASSPHRASE="other-sign-pass")
        try:
            other = init_keys(tmp_path / "other-keys", PassphraseSource())
            forger = Signer.from_file(other.admin_key("admin"), PassphraseSource())
        finally:
            os.environ.pop("LABEDGE_ROOT_PASSPHRASE"), os.environ.pop("LABEDGE_SIGNING_PASSPHRASE")
        r = send(_signed_command(forger, "dev-01", "forged-1", "pause", "forged"), "forged-1")[0]
        assert r["status"] == "refused" and "not the trusted root" in r["message"], r
        #    ... and with the facility's real key list beside it: the key is not in that list
        forger.admin_keys, forger.roots = fac.signer.admin_keys, fac.signer.roots
        r = send(_signed_command(forger, "dev-01", "forged-2", "pause", "forged"), "forged-2")[0]
        assert r["status"] == "refused" and "not in the administrator key list" in r["message"], r

        # 2. a real command with its signature broken (one byte of the payload changed)
        good = json.loads(_signed_command(fac.signer, "dev-01", "tamper-1", "pause", "maintenance"))
        good["document"]["payload"]["args"]["reason"] = "maintenancf"
        r = send(json.dumps(good).encode(), "tamper-1")[0]
        assert r["status"] == "refused" and "bad_signature" in r["message"], r

        # 3. signed for dev-02 and moved to dev-01's topic (by a broker, say)
        r = send(_signed_command(fac.signer, "dev-02", "moved-1", "pause", "x"), "moved-1")[0]
        assert r["status"] == "refused" and "not only to this device" in r["message"], r
        #    ... or moved to another id on the same device (dodging the replay check)
        r = send(_signed_command(fac.signer, "dev-01", "orig-id", "pause", "x"), "other-id")[0]
        assert r["status"] == "refused" and "not the topic's id" in r["message"], r

        # 4. expired five minutes ago
        r = send(_signed_command(fac.signer, "dev-01", "old-1", "pause", "x", not_before=time.time() - 600,
                                 valid_for=300), "old-1")[0]
        assert r["status"] == "refused" and "expired" in r["message"], r
        assert dev.status()["control"]["paused"] is False, "a refused command had an effect"

        # 5. replay: the same signed pause twice, with a resume in between; the copy changes nothing
        pause = _signed_command(fac.signer, "dev-01", "pause-1", "pause", "calibration")
        assert send(pause, "pause-1")[0]["status"] == "done"
        assert dev.status()["control"]["paused"] is True
        assert send(_signed_command(fac.signer, "dev-01", "resume-1", "resume"), "resume-1")[0]["status"] == "done"
        again = send(pause, "pause-1", n=2)[1]
        assert again["status"] == "done" and again["replayed"] is True, again
        assert dev.status()["control"]["paused"] is False, "a replayed command was executed again"
        assert agents["dev-02"].status()["control"]["paused"] is False
    finally:
        admin.close()

    # 6. a compromised device cannot even deliver a command to another device: the broker ACL refuses it
    evil = device_identity(pki, "dev-evil", tmp_path / "evil")
    cert, key = evil.certs["dev-evil"]
    intruder = MqttAs(broker, pki, cert, key, [])
    try:
        rc = intruder.publish(topics.command_topic(prefix, "dev-01", "evil-1"),
                              _signed_command(fac.signer, "dev-01", "evil-1", "pause", "evil"))
    finally:
        intruder.close()
    assert rc == 0x87, f"the broker let a device write another device's command topic (reason {rc:#x})"
    assert "evil-1" not in dev.text()


def test_diagnostics_arrive_as_a_verified_package_with_no_secret_inside(tmp_path, broker, pki) -> None:
    from agent.package.verify import verify_package
    fac = Facility(tmp_path / "facility", broker, pki)
    store = tmp_path / "store"
    rx = ReceiverProc(tmp_path / "rx", broker, pki, store).start_connected()
    cfg_path = with_trust_root(agent_config(tmp_path / "dev-01", broker.url, pki, device="dev-01"), fac.keys.root_pub)
    cfg = load_config(cfg_path, check_watch_folders=False)
    token = "tok_" + "A1b2C3d4" * 6
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    (cfg.state_dir / "web-token").write_text(token)
    key_text = Path(cfg.upload.key_file).read_text()
    agent = AgentProc(cfg_path).start()
    try:
        wait_for(lambda: "connected to " in agent.text(), 30, "the agent to connect")
        # a log that holds secrets (a careless plug-in, a pasted key): the bundle must not carry them
        with open(cfg.log_dir / "labedge.log", "a", encoding="utf-8") as log:
            log.write(f"12:00:00 INFO    page token is {token}\n{key_text}\n")
        out = fac.command("dev-01", "diagnostics", "--wait", "30")
        assert out.returncode == 0, out.stdout + out.stderr
        pid = out.stdout.split("diagnostics bundle ", 1)[1].split()[0]
        wait_for(lambda: pid in stored(store), 30, "the diagnostics package at the receiver")
    finally:
        agent.kill(signal.SIGTERM)
        rx.kill()
    where = stored(store)[pid][0]
    assert verify_package(where).ok
    prov = json.loads((where / "data/labedge/provenance.json").read_text())
    assert prov["kind"] == "diagnostics"
    diag = where / "data/raw/diagnostics"
    assert {p.name for p in diag.iterdir()} >= {"status.json", "config.json", "versions.json", "disk.json",
                                                "queue.json", "log-tail.txt"}
    everything = "\n".join(p.read_text(encoding="utf-8") for p in where.rglob("*") if p.is_file())
    assert token not in everything
    assert "PRIVATE KEY" not in everything
    for line in key_text.splitlines():
        if "-----" not in line and line.strip():
            assert line.strip() not in everything, "a line of the device's private key left the PC"
    config = json.loads((diag / "config.json").read_text())
    assert config["upload"]["key_file"] == "<removed>" and config["device_id"] == "dev-01"
    assert config["upload"]["broker"] == broker.url
    log_tail = (diag / "log-tail.txt").read_text()
    assert "connected to localhost" in log_tail and "[private key removed]" in log_tail
    status = json.loads((diag / "status.json").read_text())
    assert status["device_id"] == "dev-01" and "packages" in status
    assert json.loads((diag / "queue.json").read_text())["counts"]["queued"] >= 0
