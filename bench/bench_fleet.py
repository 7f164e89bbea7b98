"""Fleet benchmark: 200 simulated devices (status publishers, not full agents) on one broker, one
receiver with its catalog, and the administrator's tools.

    .venv/bin/python bench/bench_fleet.py [--devices 200] [--statuses 10] [--catalog sqlite|postgresql]
                                          [--agents 2 --packages 150]

Prints, from one run: connect time of the fleet; catalog rows/s (statuses recorded by the receiver)
against the rate the same status messages reach an MQTT subscriber (mosquitto_sub as the admin:
the reference, in the same run); `labedge fleet status --json` wall time against `mosquitto_sub`
collecting the same retained statuses; the dashboard's /api/fleet time and its page load in
headless Chromium; broker and receiver RSS; and packages/s one receiver sustains from real agents.
"""
from __future__ import annotations

import argparse
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "transport"))

import paho.mqtt.client as mqtt  # noqa: E402
from transport_helpers import (PKI, AgentProc, Broker, ReceiverProc, _rss_kib, agent_config, db_counts,  # noqa: E402
                               make_packages, wait_for)

from facility.catalog import open_catalog  # noqa: E402
from facility.catalog.writer import default_catalog_path  # noqa: E402
from facility.pki import issue  # noqa: E402
from wire import status as S  # noqa: E402

SUB = "/usr/bin/mosquitto_sub"


class Sim:
    def __init__(self, pki: PKI, port: int, device: str, cert: tuple[Path, Path]) -> None:
        self.device, self.topic = device, f"rde/{device}/status"
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=device, protocol=mqtt.MQTTv5)
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        self.c.tls_set_context(ctx)
        self.c.will_set(self.topic, S.offline_document(device, "connection lost", time.time()), qos=1, retain=True)
        self.connected = threading.Event()
        self.c.on_connect = lambda *_a: self.connected.set()
        self.port = port
        self.seq = 0

    def publish(self) -> None:
        self.seq += 1
        now = time.time()
        doc = {"v": 1, "device": self.device, "online": True, "sent_at": now, "connected_at": now, "seq": self.seq,
               "interval": 60, "agent_version": "0.1.0", "config": {"version": "abc123def456", "state": "local"},
               "translators": {"rigaku": "1.0", "bruker": "1.0", "gatan-dm": "1.0"},
               "queue": {"queued": self.seq % 3, "uploading": 0, "delivered": 10, "failed": 0},
               "oldest_waiting_s": 4.0, "spool": {"used": 1 << 20, "max": 1 << 34, "disk_free": 1 << 36},
               "problems": [{"kind": "warning", "text": "a typical warning sentence of moderate length"}],
               "cert_not_after": now + 300 * 86400, "last_delivery": now - 60, "os": "Windows 10",
               "host": self.device + ".lab.example"}
        self.c.publish(self.topic, S.fit(doc), qos=1, retain=True)


def sub_count(pki: PKI, admin: tuple[Path, Path], port: int, n: int, timeout: float = 120) -> subprocess.Popen:
    return subprocess.Popen([SUB, "-h", "localhost", "-p", str(port), "--cafile", str(pki.ca), "--cert", str(admin[0]),
                             "--key", str(admin[1]), "-i", "labedge-admin", "-V", "mqttv5", "-t", "rde/+/status",
                             "-q", "1", "-C", str(n), "-W", str(int(timeout))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--statuses", type=int, default=10, help="statuses each device sends in the burst")
    ap.add_argument("--catalog", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--agents", type=int, default=2)
    ap.add_argument("--packages", type=int, default=150, help="small packages per agent")
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    pki = PKI(root / "pki")
    names = [f"pc-{i:04d}" for i in range(a.devices)]
    t0 = time.perf_counter()
    certs = {n: issue(pki.ca_dir, n, root / "pki" / "clients") for n in names}
    admin = issue(pki.ca_dir, "labedge-admin", root / "pki" / "clients")
    print(f"issued {a.devices} device certificates in {time.perf_counter() - t0:.1f} s")
    broker = Broker(root / "broker", pki)
    broker.start()
    pg = None
    store = root / "store"
    extra = {}
    if a.catalog == "postgresql":
        from fleet.fleet_helpers import PgDatabase  # type: ignore[import-not-found]
        pg = PgDatabase()
        extra["catalog_url"] = pg.url
    recv = ReceiverProc(root / "r", broker, pki, store, **extra).start_connected()
    url = extra.get("catalog_url") or str(default_catalog_path(store))
    sims: list[Sim] = []
    try:
        rss0 = broker.rss_kib()
        t0 = time.perf_counter()
        for n in names:
            s = Sim(pki, broker.port, n, certs[n])
            s.c.connect("localhost", broker.port, keepalive=60)
            s.c.loop_start()
            sims.append(s)
        for s in sims:
            assert s.connected.wait(60), f"{s.device} did not connect"
        t_conn = time.perf_counter() - t0
        for s in sims:
            s.publish()
        wait_for(lambda: _catalog_statuses(url) >= a.devices, 60, "first statuses in the catalog", 0.2)
        print(f"{a.devices} devices connected (mTLS) in {t_conn:.1f} s; broker RSS {rss0 / 1024:.1f} -> "
              f"{broker.rss_kib() / 1024:.1f} MiB")

        # ---- catalog rows/s against what an MQTT subscriber receives of the same burst
        total = a.devices * a.statuses
        before = _catalog_statuses(url)
        sub = sub_count(pki, admin, broker.port, total + a.devices)  # + the retained ones it gets first
        time.sleep(1.0)  # let mosquitto_sub receive the retained statuses before the burst
        t0 = time.perf_counter()
        for _ in range(a.statuses):
            for s in sims:
                s.publish()
        sub.wait(120)
        t_sub = time.perf_counter() - t0
        wait_for(lambda: _catalog_statuses(url) >= before + total, 120, "the burst in the catalog", 0.05)
        t_cat = time.perf_counter() - t0
        print(f"status burst {total} msgs: subscriber got them all in {t_sub:.2f} s ({total / t_sub:.0f}/s); "
              f"catalog ({a.catalog}) recorded them in {t_cat:.2f} s ({total / t_cat:.0f} rows/s) = "
              f"{t_sub / t_cat:.2f}x of the subscriber")
        print(f"broker RSS {broker.rss_kib() / 1024:.1f} MiB, receiver RSS {_rss_kib(recv.proc.pid) / 1024:.1f} MiB")

        # ---- labedge fleet status against mosquitto_sub collecting the retained statuses
        fleet = root / "admin" / "fleet.toml"
        fleet.parent.mkdir(parents=True)
        fleet.write_text(f'broker = "{broker.url}"\nca_file = "{pki.ca}"\ncert_file = "{admin[0]}"\n'
                         f'key_file = "{admin[1]}"\ncatalog_url = "{url}"\n')
        fs, ref = [], []
        for _ in range(3):
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "agent", "fleet", "status", "--json", "-c", str(fleet)],
                                 capture_output=True, text=True, cwd=REPO)
            fs.append(time.perf_counter() - t0)
            assert out.returncode == 0, out.stderr
            got = json.loads(out.stdout)
            assert len(got["devices"]) == a.devices, len(got["devices"])
            t0 = time.perf_counter()
            p = sub_count(pki, admin, broker.port, a.devices)
            p.wait(60)
            ref.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "agent", "--version"], capture_output=True, cwd=REPO)
        t_py = time.perf_counter() - t0
        print(f"(python -m agent --version alone: {t_py:.2f} s)")
        print(f"labedge fleet status --json ({a.devices} devices): median {statistics.median(fs):.2f} s; "
              f"mosquitto_sub -C {a.devices} (retained): median {statistics.median(ref):.2f} s; "
              f"ratio {statistics.median(ref) / statistics.median(fs):.2f}")
        _dashboard(fleet, a.devices)

        # ---- packages/s one receiver sustains from real agents
        if a.agents:
            _packages(root, broker, pki, a.agents, a.packages, recv)
        print(f"end: broker RSS {broker.rss_kib() / 1024:.1f} MiB, receiver RSS "
              f"{_rss_kib(recv.proc.pid) / 1024:.1f} MiB")
    finally:
        for s in sims:
            s.c.disconnect()
            s.c.loop_stop()
        recv.kill()
        broker.stop()
        if pg is not None:
            pg.drop()
    return 0


def _catalog_statuses(url: str) -> int:
    try:
        c = open_catalog(url)
    except Exception:  # noqa: BLE001 - not created yet
        return 0
    try:
        return int(c.db.query("SELECT COALESCE(SUM(statuses), 0) FROM devices")[0][0])
    finally:
        c.close()


def _dashboard(fleet: Path, n: int) -> None:
    from facility.fleet.dashboard import DashboardServer
    from facility.fleet_config import load_fleet_config
    srv = DashboardServer(load_fleet_config(fleet), port=0).start()
    try:
        wait_for(lambda: len(srv.dash.watcher.statuses()) >= n, 30, "the dashboard's statuses")
        times = []
        for _ in range(7):
            req = urllib.request.Request(srv.url + "/api/fleet", headers={"Authorization": f"Bearer {srv.dash.token}"})
            t0 = time.perf_counter()
            body = urllib.request.urlopen(req, timeout=30).read()
            times.append(time.perf_counter() - t0)
        print(f"dashboard /api/fleet ({n} devices, {len(body) / 1024:.0f} KiB): median {statistics.median(times) * 1000:.0f} ms")
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            return
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
            page = b.new_page()
            page.goto(f"{srv.url}/login#token={srv.dash.token}")
            page.wait_for_selector("#devices tbody tr")
            loads = []
            for _ in range(5):
                t0 = time.perf_counter()
                page.goto(srv.url + "/")
                page.wait_for_selector(f"#devices tbody tr:nth-child({n})")
                loads.append(time.perf_counter() - t0)
            b.close()
        print(f"dashboard page load to {n} rows in Chromium: median {statistics.median(loads) * 1000:.0f} ms")
    finally:
        srv.stop()


def _packages(root: Path, broker: Broker, pki: PKI, agents: int, per: int, recv: ReceiverProc) -> None:
    procs, cfgs = [], []
    for i in range(agents):
        dev = f"pc-{i:04d}"
        pki.certs[dev] = (root / "pki" / "clients" / f"{dev}.pem", root / "pki" / "clients" / f"{dev}.key")
        cfg = agent_config(root / f"agent-{i}", broker.url, pki, device=dev, parallel=8, window=8)
        make_packages(cfg, [8192] * per, seed=i)
        cfgs.append(cfg)
    peak = 0
    first: list[tuple[float, int]] = []
    procs = [AgentProc(c).start() for c in cfgs]
    try:
        def done() -> bool:
            nonlocal peak
            peak = max(peak, _rss_kib(recv.proc.pid))
            n = sum(db_counts(c).get("delivered", 0) for c in cfgs)
            if n and not first:
                first.append((time.perf_counter(), n))  # from the first ack: agent start-up is not the receiver
            return n == agents * per
        wait_for(done, 600, "every package delivered", 0.1)
        t_end = time.perf_counter()
    finally:
        for p in procs:
            p.kill()
    t1, n1 = first[0]
    rate = (agents * per - n1) / max(t_end - t1, 1e-6)
    print(f"{agents} agents x {per} packages of 8 KiB (+ tag files) through one receiver: {rate:.1f} packages/s "
          f"(first ack -> last ack, {agents * per - n1} packages in {t_end - t1:.1f} s); receiver peak RSS "
          f"{peak / 1024:.0f} MiB")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
