"""Set-up shared by the transport benchmarks: a throwaway CA, mosquitto with mTLS on a free loopback
port (the shipped config, optionally edited) and, when asked, the reference receiver.

The caller owns the returned processes and the temporary folder (stop them in a ``finally``)."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(cond, timeout: float, what: str, interval: float = 0.02):  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class BenchBroker:
    tmp: Path
    port: int
    ca: Path
    certs: dict[str, tuple[Path, Path]]
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"mqtts://localhost:{self.port}"

    def start_receiver(self, *, code: Path = REPO, extra: str = "", env: dict | None = None) -> subprocess.Popen:
        """``labedge receive`` as ``labedge-receiver`` (it must be among the issued names); waits until connected."""
        rc, rk = self.certs["labedge-receiver"]
        log = self.tmp / "rx.log"
        (self.tmp / "rx.toml").write_text(f'broker = "{self.url}"\nca_file = "{self.ca}"\ncert_file = "{rc}"\n'
                                          f'key_file = "{rk}"\nstore_dir = "{self.tmp / "store"}"\n'
                                          f'log_file = "{log}"\n{extra}')
        rx = subprocess.Popen([sys.executable, "-m", "agent", "receive", "-c", str(self.tmp / "rx.toml")], cwd=code,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(rx)
        wait(lambda: log.exists() and "connected to" in log.read_text(errors="replace"), 30, "the receiver to connect")
        return rx

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def start_broker(tmp: Path, names: tuple[str, ...], *, edit_conf: Callable[[str], str] | None = None) -> BenchBroker:
    """A CA in ``tmp/ca``, a client certificate for each of ``names``, and mosquitto listening."""
    from facility.pki import init_ca, issue
    from installer.mosquitto.render import write_broker_files

    init_ca(tmp / "ca")
    ca = tmp / "ca" / "ca.pem"
    bcert, bkey = issue(tmp / "ca", "localhost", tmp / "broker", server=True)
    certs = {n: issue(tmp / "ca", n, tmp / "certs") for n in names}
    port = free_port()
    conf = write_broker_files(tmp / "broker", port=port, ca=ca, cert=bcert, key=bkey)
    if edit_conf is not None:
        conf.write_text(edit_conf(conf.read_text()))
    b = BenchBroker(tmp, port, ca, certs, [subprocess.Popen(["/usr/sbin/mosquitto", "-c", str(conf)])])

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            return False
    wait(listening, 10, "mosquitto")
    return b
