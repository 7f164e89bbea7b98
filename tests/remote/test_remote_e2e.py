"""Signed remote config end to end: real mosquitto with the shipped ACL, real agents as processes, and the
administrator's `labedge fleet config` commands."""
from __future__ import annotations

import json
import os
import signal

import pytest

from agent.config import load_config
from agent.state.store import StateStore
from e2e_helpers import (Observer, config_status, device_events, fleet, fleet_toml, fragment, remote_agent,
                         wait_for)
from remote_helpers import Facility
from transport_helpers import free_port


@pytest.fixture(scope="module")
def facility(tmp_path_factory):
    return Facility(tmp_path_factory.mktemp("facility"))


def _known(agent) -> set[str]:
    cfg = load_config(agent.config, check_watch_folders=False)
    if not cfg.state_db.exists():
        return set()
    st = StateStore(cfg.state_db, readonly=True)
    try:
        return {p.rsplit("/", 1)[-1] for p in st.known_files("inst")}
    finally:
        st.close()


@pytest.fixture()
def observer(tmp_path, broker, pki):
    o = Observer(broker, pki, tmp_path)
    yield o
    o.close()


def test_push_applies_live_refusals_are_reported_and_offline_device_catches_up(tmp_path, broker, pki, facility,
                                                                              observer):
    fcfg = fleet_toml(tmp_path / "admin", broker, pki, facility)
    a = remote_agent(tmp_path, broker, pki, facility, "dev-01").start()
    b = remote_agent(tmp_path, broker, pki, facility, "dev-02")            # offline for now
    try:
        observer.wait("dev-01", "its first status", online=True)
        pid = a.proc.pid
        p = fleet("config", "push", "--config", str(fcfg), "--to", "dev-01", "--wait", "30",
                  str(fragment(tmp_path, '[[instruments]]\nid = "inst"\ninclude = ["*.raw"]\n')))
        assert p.returncode == 0, p.stdout + p.stderr
        assert "dev-01: applied" in p.stdout
        d = config_status(fcfg)["dev-01"]   # what the administrator's command shows
        assert (d["state"], d["applied_version"], d["desired_version"]) == ("applied", 1, 1)
        assert a.proc.pid == pid and a.alive()   # no restart
        watch = a.config.parent / "watch"
        (watch / "skip.txt").write_text("not for the facility any more")
        (watch / "take.raw").write_text("measurement")
        wait_for(lambda: "take.raw" in _known(a), 20, "take.raw to be packaged under the new include")
        assert "skip.txt" not in _known(a)
        st = a.status()
        assert st["remote"]["applied_version"] == 1
        assert any(k["key"] == "instruments[inst].include" and k["version"] == 1 for k in st["remote"]["keys"])

        # refused: schema-invalid, and a local-only key; the device keeps version 1 and says why
        p = fleet("config", "push", "--config", str(fcfg), "--to", "dev-01", "--wait", "20",
                  str(fragment(tmp_path, "rescan_seconds = 0.001\n")))
        assert p.returncode == 1 and "dev-01: refused" in p.stdout and "rescan_seconds" in p.stdout, p.stdout
        d = observer.wait("dev-01", "the refusal", state="refused")
        assert (d["applied_version"], d["event_version"], d["desired_version"]) == (1, 2, 2)
        p = fleet("config", "push", "--config", str(fcfg), "--to", "dev-01",
                  str(fragment(tmp_path, 'state_dir = "/tmp/x"\n')))
        assert p.returncode == 2 and "local-only" in p.stderr   # refused before anything is signed

        # the offline device: pushed while away, applies the retained document when it comes back
        p = fleet("config", "push", "--config", str(fcfg), "--to", "dev-02", "--wait", "1",
                  str(fragment(tmp_path, "rescan_seconds = 7\n")))
        assert p.returncode == 3 and "no_answer" in p.stdout, p.stdout
        b.start()
        observer.wait("dev-02", "the retained version applied", state="applied", applied_version=3)
        assert load_config(b.config).rescan_seconds == 7
        hist = fleet("config", "status", "--config", str(fcfg), passphrase=None).stdout
        assert "version 3 by admin" in hist and "version 2 by admin" in hist
        # the history now knows what the offline device did after the push ended
        p = fleet("config", "status", "--config", str(fcfg), "--json", passphrase=None)
        push3 = next(x for x in json.loads(p.stdout)["pushes"] if x["version"] == 3)
        assert [(r["device"], r["state"]) for r in push3["results"]] == [("dev-02", "applied")]
        assert [e["event"] for e in device_events(a)][-2:] == ["received", "refused"]
    finally:
        a.kill(signal.SIGTERM)
        b.kill(signal.SIGTERM)


def test_cut_off_from_the_broker_rolls_back_and_reports(tmp_path, broker, pki, facility, observer):
    fcfg = fleet_toml(tmp_path / "admin", broker, pki, facility)
    a = remote_agent(tmp_path, broker, pki, facility, "dev-01", trial_seconds=3).start()
    try:
        observer.wait("dev-01", "its first status", online=True)
        closed = free_port()
        p = fleet("config", "push", "--config", str(fcfg), "--to", "dev-01", "--wait", "40",
                  str(fragment(tmp_path, f'[upload]\nbroker = "mqtts://localhost:{closed}"\n')))
        assert p.returncode == 1 and "dev-01: rolled_back" in p.stdout, p.stdout + p.stderr
        assert "not connected to the broker" in p.stdout and str(closed) in p.stdout
        d = observer.wait("dev-01", "online again after the roll back", online=True, state="rolled_back")
        assert d["applied_version"] == 0 and "not connected" in d["error"]
        assert load_config(a.config).upload.port == broker.port
    finally:
        a.kill(signal.SIGTERM)


def test_kill_during_trial_rolls_back_at_next_start(tmp_path, broker, pki, facility, observer):
    fcfg = fleet_toml(tmp_path / "admin", broker, pki, facility)
    a = remote_agent(tmp_path, broker, pki, facility, "dev-01", trial_seconds=600).start()
    try:
        observer.wait("dev-01", "its first status", online=True)
        p = fleet("config", "push", "--config", str(fcfg), "--to", "dev-01", "--wait", "1",
                  str(fragment(tmp_path, "rescan_seconds = 9\n")))
        assert p.returncode == 3, p.stdout + p.stderr
        observer.wait("dev-01", "the trial to begin", state="trial")
        assert load_config(a.config).rescan_seconds == 9
        a.kill(signal.SIGKILL)
        a.start()
        d = observer.wait("dev-01", "the roll back reported", state="rolled_back", online=True)
        assert "stopped during the trial" in d["error"] and d["event_version"] == 1
        assert load_config(a.config).rescan_seconds == 5     # agent_config's own value
    finally:
        a.kill(signal.SIGTERM)


def test_canary_stops_a_bad_config_after_one_device(tmp_path, broker, pki, facility, observer):
    fcfg = fleet_toml(tmp_path / "admin", broker, pki, facility)
    names = [f"lab-{i}" for i in range(1, 6)]
    agents = [remote_agent(tmp_path, broker, pki, facility, n, trial_seconds=2).start() for n in names]
    try:
        for n in names:
            observer.wait(n, "its first status", online=True, groups=["xrd"])
        bad = fragment(tmp_path, f'[[instruments]]\nid = "inst"\nwatch = ["{tmp_path}/not-mounted"]\n')
        p = fleet("config", "diff", "--config", str(fcfg), "--group", "xrd", str(bad), passphrase=None)
        assert p.returncode == 0 and p.stdout.count("+ instruments[inst].watch") == 5, p.stdout + p.stderr
        p = fleet("config", "push", "--config", str(fcfg), "--group", "xrd", "--canary", "1", "--max-failures",
                  "1", "--wait", "30", str(bad))
        assert p.returncode == 1 and "stopped" in p.stdout, p.stdout + p.stderr
        assert "lab-1: rolled_back" in p.stdout and "cannot be read" in p.stdout
        assert "never sent to: lab-2, lab-3, lab-4, lab-5" in p.stdout
        tried = [a for a in agents if any(e["event"] == "trial" for e in device_events(a))]
        assert [a.config.parent.name for a in tried] == ["lab-1"]
        for a in agents[1:]:
            assert device_events(a) == []            # never even received it
        observer.wait("lab-1", "back on its old config", state="rolled_back", online=True)
        hist = config_status(fcfg)
        assert hist["lab-1"]["state"] == "rolled_back" and hist["lab-2"]["state"] == "none"

        # a good config goes through every wave (1, 2, 2), then is retained on the group topic too
        p = fleet("config", "push", "--config", str(fcfg), "--group", "xrd", "--canary", "1", "--wait", "30",
                  str(fragment(tmp_path, "rescan_seconds = 6\n", "good.toml")))
        assert p.returncode == 0 and "in 3 wave(s)" in p.stdout and p.stdout.count(": applied") == 5, p.stdout
        for n in names:
            assert observer.config(n)["applied_version"] == 2
        retained = observer.retained("rde/group/xrd/config")
        assert b'"version":2' in retained
    finally:
        for a in agents:
            a.kill(signal.SIGTERM)


def test_abort_stops_a_rollout_in_progress(tmp_path, broker, pki, facility):
    import subprocess
    import sys

    from e2e_helpers import REPO, fleet_pipe_args
    from facility.fleet_config import load_fleet_config
    from facility.remote.history import open_history
    fcfg = fleet_toml(tmp_path / "admin", broker, pki, facility)
    frag = fragment(tmp_path, "rescan_seconds = 8\n")
    args, fds = fleet_pipe_args()
    push = subprocess.Popen([sys.executable, "-m", "agent", "fleet", "config", "push", "--config", str(fcfg),
                             "--to", "away-1", "--to", "away-2", "--canary", "1", "--wait", "50", str(frag), *args],
                            pass_fds=fds, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        h = open_history(load_fleet_config(fcfg).catalog_url, fcfg)
        wait_for(lambda: h.running(), 20, "the rollout to start")
        p = fleet("config", "push", "--config", str(fcfg), "--abort", passphrase=None)
        assert p.returncode == 0 and "abort requested for push 1" in p.stdout, p.stdout + p.stderr
        out, _ = push.communicate(timeout=20)
        assert push.returncode == 1 and "aborted" in out and "never sent to: away-2" in out, out
        assert h.pushes()[0]["state"] == "aborted" and [r["device"] for r in h.pushes()[0]["results"]] == ["away-1"]
        audit = [json.loads(x)["event"] for x in (fcfg.parent / "remote-audit.jsonl").read_text().splitlines()]
        assert audit[0] == "push" and "abort_requested" in audit and audit[-1] == "rollout_aborted"
        h.close()
    finally:
        push.kill()
        for fd in fds:
            os.close(fd)
