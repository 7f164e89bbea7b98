"""`labedge demo`: the whole path on one PC, on loopback, in a fresh folder.

A throwaway CA, mosquitto with mutual TLS (the shipped facility config), the reference receiver and
the agent run as child processes; a few sample files are dropped into a watched folder and each
package is shown as it arrives verified in the receiver's store. Without mosquitto it says how to
install it and runs the agent offline, so the packages wait in the queue.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from agent.lifelines import Lifelines
from agent.selfexec import self_command

DEVICE = "demo-pc"
RECEIVER = "labedge-receiver"
ADMIN = "labedge-admin"
INSTRUMENT = "demo-instrument"
#: Small real files from ../shared/samples, one per format family the translators know.
SAMPLE_PICKS = ("rigaku_xrd/XRD_RIGAKU.ras", "xrd_panalytical/empyrean.xrdml", "vamas/regular.vms",
                "xafs/cu_metal_rt.xdi", "xrd_bruker/BT86.raw")
INSTALL_HINT = """mosquitto (the MQTT broker) is not installed, so this demo runs OFFLINE:
packages are built and wait in the queue; nothing is uploaded.
To see the whole path, install mosquitto and run `labedge demo` again:
  Debian/Ubuntu:  sudo apt-get install mosquitto
  Fedora:         sudo dnf install mosquitto
  Windows:        the installer from https://mosquitto.org/download/ (then open a new terminal)
(The demo starts its own mosquitto on a free loopback port; the system service may stay disabled.)"""


class DemoError(Exception):
    """The demo could not set itself up; the message says what to do."""


class Layout:
    """Where everything of one demo lives (all under one folder the user can delete)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca, self.certs, self.broker = root / "pki" / "ca", root / "pki" / "certs", root / "broker"
        self.instrument, self.logs = root / "instrument", root / "logs"
        self.config, self.spool, self.state = root / "pc" / "labedge.toml", root / "pc" / "spool", root / "pc" / "state"
        self.receiver_config, self.store = root / "receiver" / "receiver.toml", root / "receiver" / "store"
        self.fleet_config = root / "admin" / "fleet.toml"


@dataclass
class Children:
    cwd: Path  # the demo folder: `python -m agent` must not pick up a stray ./agent from the user's cwd
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    # every child dies with the demo, even on kill -9 (its ports and files are freed)
    lifelines: Lifelines = field(default_factory=Lifelines)

    def start(self, name: str, argv: list[str], log: Path) -> subprocess.Popen:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as fh:  # the child keeps its own handle
            # Own process group: Ctrl-C reaches only the demo, which then stops the children in order.
            extra: dict[str, Any] = ({"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined]
                                     if sys.platform == "win32" else {"start_new_session": True})
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                 cwd=self.cwd, **extra, **self.lifelines.popen_kwargs())
        self.lifelines.adopt(p)
        self.procs[name], self.logs[name] = p, log
        return p

    def check(self) -> None:
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise DemoError(f"the {name} exited unexpectedly (code {p.returncode}); its log {self.logs[name]} "
                                f"ends with:\n{tail(self.logs[name])}")

    def stop(self, timeout: float = 15.0) -> None:
        # Agent first (it stops uploading cleanly), then receiver, then broker.
        for name in reversed(list(self.procs)):
            p = self.procs[name]
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_mosquitto() -> str | None:
    """PATH, then where packages put it: Debian's /usr/sbin is not on a normal user's PATH, and the
    Windows installer does not touch PATH. LABEDGE_MOSQUITTO overrides ("" = behave as not installed)."""
    if "LABEDGE_MOSQUITTO" in os.environ:
        forced = os.environ["LABEDGE_MOSQUITTO"]
        return forced if forced and Path(forced).is_file() else None
    found = shutil.which("mosquitto")
    if found:
        return found
    if sys.platform == "win32":  # pragma: no cover
        bases = [os.environ.get("ProgramFiles", r"C:\Program Files"), os.environ.get("ProgramFiles(x86)", "")]
        candidates = [Path(b, "mosquitto", "mosquitto.exe") for b in bases if b]
    else:
        candidates = [Path("/usr/sbin/mosquitto"), Path("/usr/local/sbin/mosquitto"), Path("/opt/homebrew/sbin/mosquitto")]
    return next((str(c) for c in candidates if c.is_file()), None)


def default_dir() -> Path:
    base = Path(platformdirs.user_data_dir("labedge", appauthor=False)) / "demo"
    return base / time.strftime("%Y%m%d-%H%M%S")


# ---------------------------------------------------------------- sample files

def samples_root() -> Path:
    return Path(__file__).resolve().parents[1].parent / "shared" / "samples"


def demo_files(bundled: bool = False) -> tuple[list[tuple[str, bytes]], str]:
    """(name, bytes) of the files to drop, and what they are: real samples when ../shared is beside the checkout."""
    root = samples_root()
    picks = [] if bundled else [root / p for p in SAMPLE_PICKS if (root / p).is_file()]
    if picks:
        return [(p.name, p.read_bytes()) for p in picks], "real sample files from ../shared/samples"
    return synthetic_files(), "small generated demo files (../shared/samples is not beside this install)"


def synthetic_files() -> list[tuple[str, bytes]]:
    """Tiny generated files (no vendor data is bundled): a RAS-like XRD scan and a CSV."""
    import math
    rows = [f"{10 + i * 0.02:.2f} {int(100 + 900 * math.exp(-((10 + i * 0.02 - 28.44) / 0.08) ** 2))} 1.0000"
            for i in range(0, 2500, 5)]
    ras = "\r\n".join(["*RAS_DATA_START", "*RAS_HEADER_START", '*FILE_COMMENT "labedge demo (synthetic)"',
                       '*FILE_SAMPLE "Si powder (demo)"', '*HW_XG_TARGET_NAME "Cu"', '*HW_XG_VOLTAGE "40"',
                       '*HW_XG_VOLTAGE_UNIT "kV"', '*HW_XG_CURRENT "30"', '*HW_XG_CURRENT_UNIT "mA"',
                       '*MEAS_SCAN_AXIS_X "TwoThetaTheta"', '*MEAS_SCAN_START "10.0000"', '*MEAS_SCAN_STOP "59.9800"',
                       '*MEAS_SCAN_STEP "0.1000"', '*MEAS_SCAN_SPEED "10.0000"', '*MEAS_SCAN_SPEED_UNIT "deg/min"',
                       "*RAS_HEADER_END", "*RAS_INT_START", *rows, "*RAS_INT_END", "*RAS_DATA_END", ""])
    csv = "time_s,temperature_K,resistance_ohm\n" + "".join(
        f"{t},{300 - t * 0.5:.1f},{10 + 0.01 * t:.3f}\n" for t in range(0, 200, 5))
    return [("demo_si_powder.ras", ras.encode("ascii")), ("demo_transport.csv", csv.encode("ascii"))]


def sample_sheet() -> tuple[str, bytes]:
    """A filled sample sheet (as the local HTML page saves it) that pairs every demo file."""
    import json
    doc = {"format": "labedge-sheet", "version": 1, "template": "general",
           "values": {"basic.dateSubmitted": time.strftime("%Y-%m-%d"), "sample.names": "labedge demo sample",
                      "sample.composition": "Si", "basic.description": "first run of labedge demo",
                      "custom.operator": "demo", "custom.atmosphere": "air"}}
    return "demo.sheet.json", json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")


def drop(files: list[tuple[str, bytes]], folder: Path) -> list[Path]:
    """Write like an instrument would, but atomically (temp name, then rename) so no half file is seen."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, data in files:
        tmp = folder / f".{name}.part"
        tmp.write_bytes(data)
        os.replace(tmp, folder / name)
        out.append(folder / name)
    return out


# ---------------------------------------------------------------- setting up

def make_pki(lay: Layout) -> None:
    from facility.pki import init_ca, issue
    init_ca(lay.ca, cn="labedge demo CA (throwaway)", days=90)
    issue(lay.ca, "localhost", lay.certs, server=True, days=90)
    issue(lay.ca, DEVICE, lay.certs, days=90)
    issue(lay.ca, RECEIVER, lay.certs, days=90)
    issue(lay.ca, ADMIN, lay.certs, days=90)  # the facility administrator (labedge fleet ...)


def start_broker(lay: Layout, mosquitto: str, kids: Children) -> int:
    from installer.mosquitto.render import write_broker_files
    port = free_port()
    conf = write_broker_files(lay.broker, port=port, ca=lay.ca / "ca.pem", cert=lay.certs / "localhost.pem",
                              key=lay.certs / "localhost.key")
    p = kids.start("broker (mosquitto)", [mosquitto, "-c", str(conf)], lay.logs / "mosquitto.out")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise DemoError(f"mosquitto did not start (code {p.returncode}):\n{tail(lay.logs / 'mosquitto.out')}\n"
                            f"{tail(lay.broker / 'mosquitto.log')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return port
        except OSError:
            time.sleep(0.1)  # nothing to await but the port itself
    raise DemoError(f"mosquitto did not open port {port} within 15 s; see {lay.broker / 'mosquitto.log'}")


def wait_for_log(kids: Children, name: str, logs: list[Path], needle: str, timeout: float = 20.0) -> None:
    """Wait until a child has logged ``needle`` (e.g. it is connected), or say why not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids.check()
        for log in logs:
            try:
                if needle in log.read_text(encoding="utf-8", errors="replace"):
                    return
            except OSError:
                pass
        time.sleep(0.1)
    raise DemoError(f"the {name} did not get ready within {timeout:.0f} s; its log {logs[0]} ends with:\n"
                    f"{tail(logs[0])}\n{tail(logs[-1])}")


def write_agent_config(lay: Layout, broker_port: int | None, web_port: int | None) -> None:
    q = lambda p: Path(p).resolve().as_posix()  # noqa: E731 - TOML wants forward slashes on Windows too
    upload = "" if broker_port is None else f"""
[upload]
broker = "mqtts://127.0.0.1:{broker_port}"
ca_file = "{q(lay.ca / 'ca.pem')}"
cert_file = "{q(lay.certs / (DEVICE + '.pem'))}"
key_file = "{q(lay.certs / (DEVICE + '.key'))}"
chunk_size = 262144
"""
    web = "[web]\nenabled = false\n" if web_port is None else f"[web]\nenabled = true\nport = {web_port}\n"
    lay.config.parent.mkdir(parents=True, exist_ok=True)
    lay.config.write_text(f"""# written by `labedge demo`: a complete, valid agent config to copy from
config_version = 1
device_id = "{DEVICE}"
spool_dir = "{q(lay.spool)}"
state_dir = "{q(lay.state)}"
log_dir = "{q(lay.logs)}"
rescan_seconds = 10
{upload}
{web}
[[instruments]]
id = "{INSTRUMENT}"
translator = "auto"
watch = ["{q(lay.instrument)}"]
include = ["*"]
settle_seconds = 0.5
# the demo drops a sample sheet beside the data; without one, send unpaired after 5 s
unpaired_policy = "send"
hold_seconds = 5
""", encoding="utf-8")


def write_receiver_config(lay: Layout, broker_port: int) -> None:
    q = lambda p: Path(p).resolve().as_posix()  # noqa: E731
    lay.receiver_config.parent.mkdir(parents=True, exist_ok=True)
    lay.receiver_config.write_text(f"""# written by `labedge demo`: the reference receiver (facility side)
broker = "mqtts://127.0.0.1:{broker_port}"
ca_file = "{q(lay.ca / 'ca.pem')}"
cert_file = "{q(lay.certs / (RECEIVER + '.pem'))}"
key_file = "{q(lay.certs / (RECEIVER + '.key'))}"
store_dir = "{q(lay.store)}"
log_file = "{q(lay.logs / 'receiver.log')}"
min_free_bytes = 67108864    # a demo on a nearly full laptop still runs; production keeps 256 MiB
""", encoding="utf-8")


def write_fleet_config(lay: Layout, broker_port: int) -> None:
    """The administrator's fleet.toml: its own identity, the broker, and the receiver's catalog."""
    q = lambda p: Path(p).resolve().as_posix()  # noqa: E731
    lay.fleet_config.parent.mkdir(parents=True, exist_ok=True)
    lay.fleet_config.write_text(f"""# written by `labedge demo`: the facility administrator (labedge fleet status / serve)
broker = "mqtts://127.0.0.1:{broker_port}"
ca_file = "{q(lay.ca / 'ca.pem')}"
cert_file = "{q(lay.certs / (ADMIN + '.pem'))}"
key_file = "{q(lay.certs / (ADMIN + '.key'))}"
store_dir = "{q(lay.store)}"     # the catalog is the receiver's, beside its store
""", encoding="utf-8")


def web_available() -> bool:
    try:
        import agent.sheets.server  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------- watching the packages arrive

def stored_path(lay: Layout, package_id: str) -> Path | None:
    hits = list(lay.store.glob(f"{DEVICE}/*/*/{package_id}"))
    return hits[0] if hits else None


def _rows(lay: Layout) -> list[Any]:
    import sqlite3

    from agent.state.store import open_reader
    store = open_reader(lay.state / "state.sqlite3")  # None until the agent has created its tables
    if store is None:
        return []
    try:
        return [(row, store.files_of(row.id)) for row in store.list_packages(None, limit=1000)]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []  # the agent has created the file but not yet its tables: nothing to show yet
        raise
    finally:
        store.close()


def raw_mismatches(stored: Path, sources: list[dict[str, Any]]) -> list[str]:
    """Instrument files whose sha256 (taken by the agent when it copied them) is not among the stored raw files."""
    import hashlib
    have = set()
    for f in (stored / "data" / "raw").rglob("*"):
        if f.is_file():
            h = hashlib.sha256()
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            have.add(h.hexdigest())
    return [Path(s["path"]).name for s in sources if s["sha256"] not in have]


def report(lay: Layout, online: bool, seen: dict[str, str], dropped_at: float) -> tuple[int, int]:
    """Print one line per package that reached its end state since the last call; returns (ok, not ok)."""
    from agent.intake import human
    from agent.package.verify import verify_package
    for row, sources in _rows(lay):
        label = ", ".join(Path(f["path"]).name for f in sources) or row.id
        if row.state == "failed" and seen.get(row.id) != "failed":
            seen[row.id] = "failed"
            print(f"  FAILED     {label}: {row.last_error}", flush=True)
        elif online and row.state == "delivered" and row.id not in seen:
            where = stored_path(lay, row.id)
            res = verify_package(where) if where else None
            lost = raw_mismatches(where, sources) if res is not None and res.ok else []
            if res is None or not res.ok or lost:
                why = ("not found in the receiver's store" if res is None else "; ".join(res.problems[:3])
                       or f"raw copies differ from the instrument files: {', '.join(lost)}")
                print(f"  BAD        {label} -> {row.id}: acked but {why}", flush=True)
                seen[row.id] = "bad"
                continue
            seen[row.id] = "ok"
            print(f"  DELIVERED  {label} -> {row.id}: {human(res.bytes)} in {res.files} files, bag valid, "
                  f"raw sha256 OK ({time.time() - dropped_at:.1f} s after the drop)", flush=True)
        elif not online and row.state == "queued" and row.id not in seen:
            seen[row.id] = "ok"
            print(f"  QUEUED     {label} -> {row.id}: {human(row.bytes)}, waiting for a broker "
                  f"(in {lay.spool})", flush=True)
    ok = sum(1 for v in seen.values() if v == "ok")
    return ok, len(seen) - ok


def where_is_everything(lay: Layout, broker_port: int | None, web_port: int | None) -> None:
    print(f"\nEverything is in {lay.root}  (delete the folder when done)")
    print(f"  agent config    {lay.config}")
    print(f"                  try: labedge status --config \"{lay.config}\"")
    print(f"  watched folder  {lay.instrument}  (drop more files here)")
    print(f"  queue / spool   {lay.state}, {lay.spool}")
    if broker_port is not None:
        print(f"  broker          mqtts://127.0.0.1:{broker_port}  (config {lay.broker / 'mosquitto.conf'})")
        print(f"  receiver        {lay.receiver_config}; store {lay.store}")
        print(f"  fleet (admin)   {lay.fleet_config}")
        print(f"                  try: labedge fleet status --config \"{lay.fleet_config}\"")
        print(f"                       labedge fleet serve --config \"{lay.fleet_config}\"  (the dashboard)")
    print(f"  certificates    {lay.ca} (throwaway CA), {lay.certs}")
    print(f"  logs            {lay.logs}")
    if web_port is not None:
        print(f"  local page      http://127.0.0.1:{web_port}/")


# ---------------------------------------------------------------- the command

def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def cmd_demo(args: argparse.Namespace) -> int:
    from facility.pki import PKIError

    lay = Layout((args.dir or default_dir()).resolve())
    if lay.config.exists():
        print(f"labedge: {lay.root} already holds a demo; choose another --dir or delete it", file=sys.stderr)
        return 2
    if args.mosquitto is not None and not args.mosquitto.is_file():
        print(f"labedge: --mosquitto {args.mosquitto}: no such file", file=sys.stderr)
        return 2
    mosquitto = None if args.offline else (str(args.mosquitto) if args.mosquitto else find_mosquitto())
    online = mosquitto is not None
    kids = Children(lay.root)
    broker_port = web_port = None
    lay.root.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _interrupt)  # a service manager or `kill` stops it like Ctrl-C
    try:
        print(f"labedge demo in {lay.root}")
        make_pki(lay)
        print("  made a throwaway CA and certificates for the broker, this PC, the receiver and the administrator")
        if online:
            broker_port = start_broker(lay, mosquitto, kids)
            print(f"  started mosquitto with mutual TLS on 127.0.0.1:{broker_port} (pid {kids.procs['broker (mosquitto)'].pid})")
            write_receiver_config(lay, broker_port)
            write_fleet_config(lay, broker_port)
            p = kids.start("receiver", [*self_command(), "receive", "--config", str(lay.receiver_config)],
                           lay.logs / "receiver.out")
            wait_for_log(kids, "receiver", [lay.logs / "receiver.log", lay.logs / "receiver.out"], "connected to")
            print(f"  started the receiver (pid {p.pid}); it is subscribed")
        else:
            print("\n" + (INSTALL_HINT if not args.offline else "running offline (--offline): nothing is uploaded")
                  + "\n")
        web_port = free_port() if web_available() else None
        write_agent_config(lay, broker_port, web_port)
        p = kids.start("agent", [*self_command(), "run", "--config", str(lay.config)], lay.logs / "agent.out")
        print(f"  started the agent (pid {p.pid}) watching {lay.instrument}")
        files, source = demo_files(args.bundled)
        drop([sample_sheet()], lay.instrument)  # first, so each measurement finds it beside it
        dropped = drop(files, lay.instrument)
        dropped_at = time.time()
        print(f"  dropped {len(dropped)} {source} into the watched folder\n")
        seen: dict[str, str] = {}
        deadline = time.monotonic() + args.timeout
        told = False
        while True:
            kids.check()
            done, bad = report(lay, online, seen, dropped_at)
            if args.once and done + bad >= len(dropped):
                if bad:
                    print(f"\nlabedge: {bad} of {len(dropped)} packages did not get through; see the logs in "
                          f"{lay.logs}", file=sys.stderr)
                    where_is_everything(lay, broker_port, web_port)
                    return 1
                break
            if args.once and time.monotonic() > deadline:
                print(f"\nlabedge: only {done} of {len(dropped)} packages got through in {args.timeout:.0f} s; "
                      f"see the logs in {lay.logs}", file=sys.stderr)
                where_is_everything(lay, broker_port, web_port)
                return 1
            if done >= len(dropped) and not told:
                told = True
                where_is_everything(lay, broker_port, web_port)
                print("\nAll arrived" if online else "\nAll queued", end="")
                print(". The demo keeps running: drop more files into the watched folder. Stop it with Ctrl-C.",
                      flush=True)
            time.sleep(0.3)  # a display refresh, not a wait for a condition we could block on
        print("\nAll " + ("arrived verified in the receiver's store." if online else
                          "packaged and waiting in the queue (offline)."))
        where_is_everything(lay, broker_port, web_port)
        return 0
    except KeyboardInterrupt:
        print("\nstopping the demo ...")
        return 0
    except (DemoError, PKIError) as exc:
        print(f"labedge: demo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        kids.stop()
        if kids.procs:
            print(f"stopped the demo's processes; the files stay in {lay.root}")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="the whole path on this PC: CA, broker, receiver and agent on loopback",
                       description="Run a throwaway CA, mosquitto with mTLS, the receiver and the agent on "
                                   "loopback, drop sample files and watch them arrive verified.")
    p.add_argument("--dir", type=Path, default=None,
                   help="folder for everything (default: a new folder under the user data dir)")
    p.add_argument("--once", action="store_true", help="exit when all dropped files have arrived (or are queued)")
    p.add_argument("--offline", action="store_true", help="do not start a broker: show the offline queue")
    p.add_argument("--bundled", action="store_true",
                   help="drop the small generated demo files even when ../shared/samples exists")
    p.add_argument("--mosquitto", type=Path, default=None, help="path to the mosquitto executable (default: PATH, /usr/sbin, Program Files; "
                        "or the LABEDGE_MOSQUITTO environment variable)")
    p.add_argument("--timeout", type=float, default=120.0, help="--once gives up after this many seconds")
    p.set_defaults(func=cmd_demo)
