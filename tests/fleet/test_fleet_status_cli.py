"""``labedge fleet status`` as a process against real mosquitto, a real receiver and its SQLite
catalog: offline (by the will), stale (silent past 3 heartbeats, never "fine"), error and ok, in
that order, in JSON and in words; and a fleet.toml error in one line."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time

from fleet_helpers import SimDevice, write_fleet_toml
from transport_helpers import REPO, ReceiverProc, wait_for

from facility.catalog import open_catalog
from facility.catalog.writer import default_catalog_path


FAILING = {"queue": {"queued": 5, "uploading": 0, "delivered": 1, "failed": 2},
           "problems": [{"kind": "error", "text": "package x failed: disk"}]}


def fleet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent", "fleet", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=60)


def test_fleet_status_orders_offline_stale_error_ok(tmp_path, broker, pki):
    store = tmp_path / "store"
    recv = ReceiverProc(tmp_path / "r", broker, pki, store).start_connected()
    # dev-01 beats every second (stale after 3 s of silence); the others every 30 s
    sims = {d: SimDevice(broker, pki, d, interval=1 if d == "dev-01" else 30, keepalive=5).connect()
            for d in ("dev-01", "dev-02", "dev-03", "dev-04")}
    try:
        sims["dev-01"].publish()                                       # will go silent: stale
        sims["dev-02"].publish(**FAILING)
        sims["dev-03"].publish()                                       # will crash: offline by its will
        sims["dev-04"].publish()
        cat_path = default_catalog_path(store)
        wait_for(lambda: cat_path.exists(), 10, "the receiver's catalog")
        cat = open_catalog(str(cat_path))
        wait_for(lambda: len(cat.devices()) == 4, 10, "4 devices in the catalog")
        sims["dev-01"].close()                                         # clean: no will, retained "online"
        sims["dev-03"].client.socket().close()                         # crash: the broker sends the will
        wait_for(lambda: any(d["device"] == "dev-03" and not d["online"] for d in cat.devices()), 10,
                 "dev-03 offline in the catalog")
        t_silent = time.time()
        cfg = write_fleet_toml(tmp_path / "admin", broker, pki, store_dir=str(store), status_interval=60)
        # dev-01 is now silent for more than 3 of its 1 s heartbeats
        wait_for(lambda: time.time() - t_silent > 3.2, 5, "dev-01's silence")
        out = fleet("status", "--config", str(cfg), "--json")
        assert out.returncode == 0, out.stderr
        got = json.loads(out.stdout)
        states = [(d["device"], d["state"]) for d in got["devices"]]
        assert states == [("dev-03", "offline"), ("dev-01", "stale"), ("dev-02", "error"), ("dev-04", "ok")], states
        by = {d["device"]: d for d in got["devices"]}
        assert "silent for more than 3 heartbeats" in by["dev-01"]["why"]
        assert by["dev-03"]["since"] is not None and "connection lost" in by["dev-03"]["why"]
        assert by["dev-02"]["failed"] == 2 and by["dev-02"]["problems"][0]["text"].startswith("package x failed")
        assert got["catalog_note"] is None and got["broker_error"] is None
        text = fleet("status", "--config", str(cfg))
        lines = text.stdout.splitlines()
        assert lines[0].startswith("4 device(s): 1 offline, 1 stale, 1 error, 1 ok"), text.stdout
        assert "OFFLINE" in lines[1] and "dev-03" in lines[1] and re.search(r"  down \d+[smhd]  ", lines[1])
        assert "STALE" in lines[2] and "dev-01" in lines[2] and "last seen" in lines[2]
        assert "ERROR" in lines[3] and "f 2" in lines[3] and "2 package(s) failed" in lines[3]
        assert "OK" in lines[4] and "cert 199d" in lines[4] and re.search(r"  up \d+[smhd]  ", lines[4])
        assert " ago" not in lines[4].split("delivered")[0]   # "up 2m", not "up 2m ago"
        # only some devices; --check says whether anything shown needs attention
        only = fleet("status", "--config", str(cfg), "--check", "dev-04")
        assert only.returncode == 0 and only.stdout.splitlines()[0] == "1 device(s): 1 ok", only.stdout
        worried = fleet("status", "--config", str(cfg), "--check", "--json", "dev-04", "dev-02")
        assert worried.returncode == 1
        assert [d["device"] for d in json.loads(worried.stdout)["devices"]] == ["dev-02", "dev-04"]
        cat.close()
    finally:
        for s in sims.values():
            try:
                s.close()
            except Exception:  # noqa: BLE001 - already closed
                pass
        recv.kill()


def test_fleet_toml_errors_are_one_line(tmp_path, broker, pki):
    cfg = write_fleet_toml(tmp_path, broker, pki, colour="blue")
    out = fleet("status", "--config", str(cfg))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "unknown key 'colour'" in out.stderr and "fleet.toml" in out.stderr
    cfg = write_fleet_toml(tmp_path, broker, pki, catalog_url="mysql://x")
    out = fleet("status", "--config", str(cfg))
    assert out.returncode == 2 and "catalog_url" in out.stderr


def test_broker_down_is_said_not_hidden(tmp_path, broker, pki):
    cfg = write_fleet_toml(tmp_path, broker, pki)
    broker.stop()
    out = fleet("status", "--config", str(cfg))
    assert out.returncode == 3, out.stdout + out.stderr
    assert f"broker {broker.url}" in out.stderr and "Traceback" not in out.stderr


def test_watch_follows_changes(tmp_path, broker, pki):
    import queue
    import signal
    import threading

    cfg = write_fleet_toml(tmp_path / "admin", broker, pki)
    sim = SimDevice(broker, pki, "dev-01").connect()
    proc = subprocess.Popen([sys.executable, "-m", "agent", "fleet", "status", "--config", str(cfg), "--watch",
                             "--json", "--every", "0.3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(json.loads(ln)) for ln in proc.stdout], daemon=True).start()

    def state_becomes(want: str) -> bool:
        while not lines.empty():
            got = {d["device"]: d["state"] for d in lines.get()["devices"]}
            if got.get("dev-01") == want:
                return True
        return False
    try:
        sim.publish()
        wait_for(lambda: state_becomes("ok"), 20, "dev-01 ok in the watch output")
        sim.publish(**FAILING)
        wait_for(lambda: state_becomes("error"), 10, "dev-01's failure in the watch output")
        sim.client.socket().close()
        wait_for(lambda: state_becomes("offline"), 10, "dev-01 offline in the watch output")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        try:
            sim.close()
        except Exception:  # noqa: BLE001
            pass


def test_a_bad_admin_key_is_one_line_everywhere(tmp_path, broker, pki):
    cfg = write_fleet_toml(tmp_path, broker, pki)
    bad = tmp_path / "not-a-key.pem"
    bad.write_text("hello")
    cfg.write_text(cfg.read_text().replace(str(pki.certs["labedge-admin"][1]), str(bad)))
    for args, code in ((["status"], 3), (["status", "--watch"], 2), (["serve", "--port", "0"], 2)):
        out = fleet(*args, "--config", str(cfg))
        assert out.returncode == code, (args, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr and "not-a-key.pem" in out.stderr, (args, out.stderr)


def test_dashboard_port_0_in_fleet_toml_means_any_free_port_as_on_the_command_line(tmp_path, pki):
    """`fleet serve --port 0` worked, `[dashboard] port = 0` was refused ("0 is out of range")."""
    from fleet_helpers import ADMIN, identity

    from facility.fleet_config import load_fleet_config
    cert, key = identity(pki, ADMIN)
    p = tmp_path / "fleet.toml"
    p.write_text(f'broker = "mqtts://127.0.0.1:1"\nca_file = "{pki.ca}"\ncert_file = "{cert}"\nkey_file = "{key}"\n'
                 f'store_dir = "{tmp_path}"\n[dashboard]\nport = 0\n')
    assert load_fleet_config(p).dashboard.port == 0
