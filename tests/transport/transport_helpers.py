"""Helpers for the transport tests: real mosquitto with mTLS on loopback, receivers and agents as processes, package helpers.

The broker runs the SHIPPED facility config (installer/mosquitto, rendered for loopback), so
what the tests exercise is what a facility installs. Everything waits on conditions with
deadlines; nothing sleeps a fixed time.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from agent.package.bag import write_bag_tags
from agent.package.ids import new_package_id
from agent.state.store import FileRecord, StateStore, open_reader

REPO = Path(__file__).resolve().parents[2]
MOSQUITTO = Path("/usr/sbin/mosquitto")
DEVICES = ("dev-01", "dev-02")
RECEIVERS = ("labedge-receiver", "labedge-receiver-b")


def wait_for(cond: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------ PKI
class PKI:
    def __init__(self, root: Path) -> None:
        from facility.pki import init_ca, issue
        self.root = root
        self.ca_dir = root / "ca"
        init_ca(self.ca_dir)
        self.ca = self.ca_dir / "ca.pem"
        self.broker_cert, self.broker_key = issue(self.ca_dir, "localhost", root / "broker", server=True)
        self.certs: dict[str, tuple[Path, Path]] = {}
        for name in DEVICES + RECEIVERS:
            self.certs[name] = issue(self.ca_dir, name, root / "clients")


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


# ------------------------------------------------------------------------------------ broker
class Broker:
    """mosquitto on a fixed free port; restartable (SIGTERM or SIGKILL) on the same port."""

    def __init__(self, root: Path, pki: PKI) -> None:
        from installer.mosquitto.render import write_broker_files
        self.root, self.pki = root, pki
        self.port = free_port()
        self.conf = write_broker_files(root, port=self.port, ca=pki.ca, cert=pki.broker_cert, key=pki.broker_key,
                                       receivers=list(RECEIVERS))
        self.log = root / "mosquitto.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtts://localhost:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([str(MOSQUITTO), "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)

        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto exited: {self.proc.stderr.read().decode()} "
                                     f"{self.log.read_text() if self.log.exists() else ''}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                return False
        wait_for(up, 15, "mosquitto to listen")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(15)
        self.proc = None

    def restart(self, sig: int = signal.SIGTERM) -> None:
        self.stop(sig)
        self.start()

    def rss_kib(self) -> int:
        return _rss_kib(self.proc.pid) if self.proc else 0


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@pytest.fixture()
def broker(tmp_path, pki):
    if not MOSQUITTO.exists():
        pytest.skip("mosquitto is not installed at /usr/sbin/mosquitto (apt-get install mosquitto)")
    b = Broker(tmp_path / "broker", pki)
    b.start()
    yield b
    b.stop()


# ------------------------------------------------------------------------------------ processes
class Proc:
    def __init__(self, args: list[str], log: Path) -> None:
        self.args, self.log = args, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Proc":
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        out.close()
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(20)
        self.proc = None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class ReceiverProc(Proc):
    def __init__(self, root: Path, broker: Broker, pki: PKI, store: Path, name: str = RECEIVERS[0],
                 **extra: object) -> None:
        cert, key = pki.certs[name]
        cfg = {"broker": broker.url,
               "ca_file": str(pki.ca), "cert_file": str(cert), "key_file": str(key), "store_dir": str(store),
               "window": 8, "reconnect_max": 1, "log_level": "INFO", **extra}
        root.mkdir(parents=True, exist_ok=True)
        self.config = root / f"{name}.toml"
        self.config.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in cfg.items()))
        self.store = store
        self.connects = 0
        super().__init__([sys.executable, "-m", "agent", "receive", "-c", str(self.config)], root / f"{name}.log")

    def start_connected(self) -> "ReceiverProc":
        before = self.text().count("connected to ")
        self.start()
        wait_for(lambda: self.text().count("connected to ") > before or not self.alive(), 30, "the receiver to connect")
        assert self.alive(), self.text()[-3000:]
        return self


def agent_config(root: Path, broker_url: str, pki: PKI, device: str = DEVICES[0], **upload: object) -> Path:
    cert, key = pki.certs[device]
    watch = root / "watch"
    watch.mkdir(parents=True, exist_ok=True)
    up = {"broker": broker_url, "ca_file": str(pki.ca), "cert_file": str(cert), "key_file": str(key),
          "chunk_size": 65536, "window": 4, "ack_timeout": 3, "reconnect_max": 1, **upload}
    text = (f'device_id = "{device}"\nspool_dir = "{root / "spool"}"\nstate_dir = "{root / "state"}"\n'
            f'log_dir = "{root / "logs"}"\nrescan_seconds = 5\n[web]\nenabled = false\n[upload]\n'
            + "".join(f"{k} = {json.dumps(v)}\n" for k, v in up.items())
            + f'[[instruments]]\nid = "inst"\nwatch = ["{watch}"]\nsettle_seconds = 0.3\npoll_seconds = 0.2\n'
            + 'unpaired_policy = "send"\nhold_seconds = 0\n')  # transport tests: no sample sheets
    p = root / "agent.toml"
    p.write_text(text)
    return p


class AgentProc(Proc):
    def __init__(self, config: Path) -> None:
        self.config = config
        super().__init__([sys.executable, "-m", "agent", "run", "-c", str(config)], config.parent / "agent.out")

    def status(self) -> dict:
        out = subprocess.run([sys.executable, "-m", "agent", "status", "--json", "-c", str(self.config)],
                             capture_output=True, text=True, cwd=REPO, timeout=60)
        assert out.returncode in (0, 1, 3), out.stderr  # healthy, problems, not running (2 = bad config)
        return json.loads(out.stdout)


def db_counts(config: Path) -> dict[str, int]:
    from agent.config import load_config
    cfg = load_config(config, check_watch_folders=False)
    st = open_reader(cfg.state_db)  # None: no file yet, or the agent is still creating its tables
    if st is None:
        return {}
    try:
        return st.counts()
    finally:
        st.close()


# ------------------------------------------------------------------------------------ packages
def make_packages(config: Path, sizes: list[int], seed: int = 1) -> dict[str, str]:
    """Build valid bags straight into the agent's spool and queue; returns {package id: raw sha256}.

    Bypasses watching/translation (tested elsewhere) so transport tests stay fast.
    """
    import hashlib
    import random

    from agent.config import load_config
    cfg = load_config(config, check_watch_folders=False)
    rnd = random.Random(seed)
    store = StateStore(cfg.state_db)
    out = {}
    try:
        for n, size in enumerate(sizes):
            pid = new_package_id()
            work = cfg.spool_dir / "packages" / pid
            files = {
                "data/raw/sample.bin": rnd.randbytes(size),
                "data/invoice/invoice.json": json.dumps({"datasetId": "x", "basic": {"dataName": f"p{n}"}}).encode(),
                "data/tasksupport/invoice.schema.json": b'{"type": "object"}',
                "data/labedge/provenance.json": json.dumps({"package_id": pid, "sources": []}).encode(),
            }
            rows = []
            for rel, data in files.items():
                (work / rel).parent.mkdir(parents=True, exist_ok=True)
                (work / rel).write_bytes(data)
                rows.append((rel, hashlib.sha256(data).hexdigest(), len(data)))
            write_bag_tags(work, rows, {"External-Identifier": pid, "Source-Organization": cfg.device_id})
            raw_sha = hashlib.sha256(files["data/raw/sample.bin"]).hexdigest()
            store.add_package(package_id=pid, instrument_id="inst", path=str(work),
                              nbytes=sum(len(d) for d in files.values()),
                              files=[FileRecord(f"/src/{pid}.bin", size, 0, raw_sha)])
            out[pid] = raw_sha
    finally:
        store.close()
    return out


def stored(store: Path) -> dict[str, list[Path]]:
    """package id -> every place it is stored (exactly-once means one each)."""
    out: dict[str, list[Path]] = {}
    for bagit in store.glob("*/[0-9][0-9][0-9][0-9]/[0-9][0-9]/*/bagit.txt"):
        out.setdefault(bagit.parent.name, []).append(bagit.parent)
    return out


def partial_chunks(store: Path, pid: str) -> int:
    logs = list(store.glob(f".partial/*/{pid}/chunks-*.log"))
    return len({c for p in logs for c in _seqs(p)})


def _seqs(p: Path) -> set[int]:
    import struct
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return set()
    return {s for (s,) in struct.iter_unpack(">I", data[:len(data) - len(data) % 4])}


def assert_exactly_once(store: Path, expected: dict[str, str]) -> None:
    import hashlib

    from agent.package.verify import verify_package
    got = stored(store)
    assert set(got) == set(expected), f"stored {sorted(got)} != expected {sorted(expected)}"
    for pid, raw_sha in expected.items():
        assert len(got[pid]) == 1, f"{pid} stored {len(got[pid])} times: {got[pid]}"
        res = verify_package(got[pid][0])
        assert res.ok, res.problems
        assert hashlib.sha256((got[pid][0] / "data/raw/sample.bin").read_bytes()).hexdigest() == raw_sha
    assert not list(store.glob(".partial/*/*/offer.json")), "partial transfers left behind"


def upload_facts(config: Path) -> dict:
    """The uploader's `upload` facts as flushed to the state DB (what `labedge status --json` shows)."""
    from agent.config import load_config
    cfg = load_config(config, check_watch_folders=False)
    st = open_reader(cfg.state_db)
    if st is None:
        return {}
    try:
        snap = st.health().get("agent", {}).get("value", {})
    finally:
        st.close()
    return snap.get("facts", {}).get("upload") or {}


def transfer_record(config: Path, pid: str) -> dict:
    recs = [r for r in upload_facts(config).get("recent", []) if r["package_id"] == pid]
    assert recs, f"no finished transfer of {pid} in the status"
    return recs[-1]
