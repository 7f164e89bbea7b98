"""The device side in process (a real Agent, real files, no broker): checks before apply, the trial,
commit, roll back, and the roll back at start after a crash during the trial."""
from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from agent.config import load_config
from agent.remote import apply
from agent.remote.layers import RemoteFiles
from agent.remote.state import StateDir
from agent.runner import Agent
from remote_helpers import Facility, local_config, wait_for


@pytest.fixture(scope="module")
def facility(tmp_path_factory):
    return Facility(tmp_path_factory.mktemp("facility"))


@pytest.fixture()
def running(tmp_path, facility):
    cfg = load_config(local_config(tmp_path, facility.root_pub, trial_seconds=1))
    agent = Agent(cfg)
    agent.start()
    yield agent
    assert agent.stop() == []


def _settled(agent, state, version):
    return wait_for(lambda: (r := agent.remote.report())["state"] == state and r["version"] == version and r,
                    10, f"state {state} for version {version}")


def test_valid_push_reloads_in_process_and_commits(running, facility):
    agent = running
    first_watcher = agent.watchers["inst"]
    agent.remote.submit(facility.bundle('rescan_seconds = 5\n[[instruments]]\nid = "inst"\ninclude = ["*.raw"]\n',
                                        1, devices=["pc-1"]), "rde/pc-1/config")
    wait_for(lambda: agent.remote.report()["state"] == "trial", 5, "the trial to begin")
    r = _settled(agent, "applied", 1)
    assert r["applied_version"] == 1 and r["desired_version"] == 1 and r["signer"] == "admin"
    # the running agent now works with it: new watcher threads with the new values, same process
    assert agent.cfg.rescan_seconds == 5 and agent.watchers["inst"].rescan_seconds == 5
    assert agent.watchers["inst"] is not first_watcher and agent.cfg.instrument("inst").include == ("*.raw",)
    assert all(t.is_alive() for t in agent.threads)
    files = RemoteFiles.beside(agent.cfg.source)
    assert "version 1" in files.toml.read_text() and "local-only" in files.toml.read_text()
    assert json.loads(files.envelope.read_text())["document"]["version"] == 1
    wait_for(lambda: [e["event"] for e in StateDir(agent.cfg.state_dir).audit_lines()]
             == ["received", "trial", "applied"], 5, "the audit log to say received, trial, applied")
    assert agent.health.get("remote_config")["state"] == "applied"
    # the previous version signed again is a replay
    agent.remote.submit(facility.bundle("rescan_seconds = 5\n", 1, valid_for=timedelta(hours=3)), "rde/pc-1/config")
    r = _settled(agent, "refused", 1)
    assert "not newer than version 1" in r["reason"] and r["applied_version"] == 1


def test_refusals_keep_the_config_and_say_why(running, facility, tmp_path):
    agent = running
    agent.remote.submit(facility.bundle("rescan_seconds = 9\n", 3), "rde/pc-1/config")
    _settled(agent, "applied", 3)
    now = time.time()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from facility.keys import Signer
    stranger = Signer(Ed25519PrivateKey.generate(), facility.admin.admin_keys, [])
    cases = [
        (facility.bundle("rescan_seconds = 2\n", 4, signer=stranger), "not in the administrator key list"),
        (facility.bundle("rescan_seconds = 2\n", 2), "not newer than version 3"),
        (facility.bundle("rescan_seconds = 2\n", 5, devices=["pc-2"]), "not this device (pc-1"),
        (facility.bundle("rescan_seconds = 2\n", 6, groups=["sem"]), "groups ['sem']"),
        (facility.bundle("rescan_seconds = 2\n", 7, not_before=now - 7200, valid_for=timedelta(hours=1)),
         "expired at"),
        (facility.bundle("rescan_seconds = 0.001\n", 8), "the merged config is not valid: "),
        (facility.bundle('device_id = "pc-9"\n[upload]\nkey_file = "/tmp/k"\n', 9),
         "may not set device_id, upload.key_file"),
    ]
    for bundle, words in cases:
        agent.remote.submit(bundle, "rde/pc-1/config")
        r = wait_for(lambda: (x := agent.remote.report())["state"] == "refused" and words in x["reason"] and x,
                     10, f"a refusal saying {words!r}")
        assert r["applied_version"] == 3 and agent.cfg.rescan_seconds == 9
    # a revoked key: bob signs fine until the new root-signed list reaches the device
    bob_doc = facility.bundle("rescan_seconds = 11\n", 10, signer=facility.bob)
    facility.revoke_bob()
    agent.remote.submit(facility.bundle("rescan_seconds = 12\n", 11), "rde/pc-1/config")  # carries the new list
    _settled(agent, "applied", 11)
    agent.remote.submit(bob_doc, "rde/pc-1/config")
    r = _settled(agent, "refused", 10)
    assert "revoked administrator key 'bob'" in r["reason"] and agent.cfg.rescan_seconds == 12
    assert r["desired_version"] == 11   # nothing forged or stale moved what the facility wants
    audit = StateDir(agent.cfg.state_dir).audit_lines()
    assert [e["code"] for e in audit if e["event"] == "refused"][-1] == "revoked_key"


def test_missing_watch_folder_rolls_back_within_the_trial(running, facility, tmp_path):
    agent = running
    t0 = time.monotonic()
    bad = facility.bundle(f'[[instruments]]\nid = "inst"\nwatch = ["{tmp_path}/nope"]\n', 1)
    agent.remote.submit(bad, "rde/pc-1/config")
    r = _settled(agent, "rolled_back", 1)
    assert "cannot be read" in r["reason"] and "nope" in r["reason"] and time.monotonic() - t0 < 5
    assert r["applied_version"] == 0 and not RemoteFiles.beside(agent.cfg.source).toml.exists()
    wait_for(lambda: agent.cfg.instrument("inst").watch == (tmp_path / "watch",), 5, "the old config back")
    wait_for(lambda: agent.threads and all(t.is_alive() for t in agent.threads), 5, "the components running")
    # the retained copy redelivered after a reconnect is ignored; a re-signed copy is refused, never retried
    agent.remote.submit(bad, "rde/pc-1/config")
    agent.remote.submit(facility.bundle(f'[[instruments]]\nid = "inst"\nwatch = ["{tmp_path}/nope"]\n', 1,
                                        valid_for=timedelta(hours=2)), "rde/pc-1/config")
    r = _settled(agent, "refused", 1)
    assert "already applied or tried" in r["reason"]
    wait_for(lambda: [e["event"] for e in StateDir(agent.cfg.state_dir).audit_lines()]
             == ["received", "trial", "rolled_back", "received", "refused"], 5, "the audit log")


def test_crash_during_trial_rolls_back_at_next_start(tmp_path, facility):
    cfg = load_config(local_config(tmp_path, facility.root_pub, trial_seconds=1))
    agent = Agent(cfg)
    agent.start()
    agent.remote.submit(facility.bundle("rescan_seconds = 5\n", 1), "rde/pc-1/config")
    _settled(agent, "applied", 1)
    cfg.source.write_text(cfg.source.read_text().replace("trial_seconds = 1", "trial_seconds = 600"))
    agent.remote.submit(facility.bundle("rescan_seconds = 7\n", 2), "rde/pc-1/config")
    wait_for(lambda: agent.cfg.rescan_seconds == 7, 5, "the trial config to run")
    # what a kill -9 leaves: the trial recorded, the new layer on disk, nothing committed
    agent.remote.stop()
    agent.remote.join(5)
    agent.stop()
    again = Agent(load_config(cfg.source))
    assert again.cfg.rescan_seconds == 7          # loaded with the trial layer ...
    again.start()
    try:
        assert again.cfg.rescan_seconds == 5      # ... and rolled back before anything ran with it
        assert again.watchers["inst"].rescan_seconds == 5
        r = again.remote.report()
        assert r["state"] == "rolled_back" and r["version"] == 2 and "stopped during the trial" in r["reason"]
        assert r["applied_version"] == 1
    finally:
        assert again.stop() == []


def test_status_and_local_page_say_which_keys_the_facility_set(tmp_path, facility):
    import urllib.request

    from agent.status import build_status, format_status
    cfg = load_config(local_config(tmp_path, facility.root_pub, trial_seconds=1, web=True))
    agent = Agent(cfg)
    agent.start()
    try:
        agent.remote.submit(facility.bundle("rescan_seconds = 5\n", 4), "rde/pc-1/config")
        _settled(agent, "applied", 4)
        agent.remote.submit(facility.bundle('state_dir = "/elsewhere"\n', 5), "rde/pc-1/config")
        _settled(agent, "refused", 5)
        text = format_status(build_status(agent.cfg))
        assert "version 5 REFUSED: the facility may not set state_dir" in text and "running version 4" in text
        assert ("rescan_seconds = 5  (from the facility, version 4; your labedge.toml says 60: the facility's "
                "value wins)") in text
        assert "always follow labedge.toml" in text and "state_dir" in text
        wait_for(lambda: agent.web is not None and agent.web.port, 5, "the local page")
        page = urllib.request.urlopen(f"http://127.0.0.1:{agent.web.port}/", timeout=10).read().decode()
        assert "from the facility, version 4" in page and "Remote config: version 5 REFUSED" in page
    finally:
        assert agent.stop() == []


def test_run_rolls_back_an_interrupted_trial_before_it_checks_the_config(tmp_path, facility):
    """A trial cut short by a crash may be exactly what stops `run` (a missing watch folder): undo it first."""
    from agent.check import load_checked_config
    from agent.config import ConfigError
    from agent.remote.hook import settle_before_start
    from agent.remote.state import RemoteState
    cfg = load_config(local_config(tmp_path, facility.root_pub))
    sd, st = StateDir(cfg.state_dir), RemoteState()
    cand = apply.check_document(facility.bundle(f'[[instruments]]\nid = "inst"\nwatch = ["{tmp_path}/gone"]\n', 1),
                                cfg, st)
    apply.stage(cand, RemoteFiles.beside(cfg.source), sd, st, trial_for=60, bundle=b"", topic="t")
    with pytest.raises(ConfigError, match="gone"):
        load_checked_config(cfg.source)          # what `run` would do without the roll back
    settle_before_start(cfg.source)
    assert load_checked_config(cfg.source).instrument("inst").watch == (tmp_path / "watch",)
    assert sd.load().report()["state"] == "rolled_back"
    assert [e["event"] for e in sd.audit_lines()] == ["rolled_back"]


def test_a_second_run_on_the_config_leaves_the_running_agents_trial_alone(tmp_path, facility):
    """`labedge run` twice on one config: the second is refused by the one-agent lock, and it must not roll
    back the first agent's trial on its way to that refusal."""
    from agent.instance import Instance
    from agent.remote.hook import settle_before_start
    from agent.remote.state import RemoteState
    cfg = load_config(local_config(tmp_path, facility.root_pub))
    sd, st = StateDir(cfg.state_dir), RemoteState()
    cand = apply.check_document(facility.bundle("rescan_seconds = 33\n", 1), cfg, st)
    apply.stage(cand, RemoteFiles.beside(cfg.source), sd, st, trial_for=60, bundle=b"", topic="t")
    first = Instance(cfg).claim()            # the running agent, in its trial
    try:
        settle_before_start(cfg.source)      # the second `run`
        assert sd.load().report()["state"] == "trial"
        assert load_config(cfg.source).rescan_seconds == 33
    finally:
        first.release()
    settle_before_start(cfg.source)          # no agent holds the config: an interrupted trial is undone
    assert sd.load().report()["state"] == "rolled_back"
