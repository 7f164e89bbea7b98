"""Delivery time of a normal device while an intruder device sits in the receivers' share group
(security finding 1), with the shipped broker config and with its labedge_guard plugin removed.

    .venv/bin/python bench/bench_share_intruder.py [--files 5] [--mib 10] [--timeout 120] [--no-guard]

Real mosquitto, `labedge receive`, `labedge run`; the intruder is a paho client holding another
device's certificate that subscribes to $share/labedge/rde/+/up/#.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from _broker import BenchBroker, start_broker, wait  # noqa: E402
from bench_transport import MiB, write_random  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=5)
    ap.add_argument("--mib", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--no-guard", action="store_true", help="remove the plugin lines (the old shipped config)")
    ap.add_argument("--no-intruder", action="store_true", help="the reference: nobody in the share group")
    args = ap.parse_args()
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    tmp = Path(tempfile.mkdtemp(prefix="labedge-intruder-"))
    b: BenchBroker | None = None
    try:
        # --no-guard: the plugin lines removed (the old shipped config)
        b = start_broker(tmp, ("dev-01", "intruder-01", "labedge-receiver"),
                         edit_conf=(lambda c: re.sub(r"(?m)^(plugin.*)$", r"# \1", c)) if args.no_guard else None)
        port, ca, certs = b.port, b.ca, b.certs
        procs = b.procs
        b.start_receiver()
        intruder = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="intruder-01", protocol=mqtt.MQTTv5)
        ctx = ssl.create_default_context(cafile=str(ca))
        ctx.load_cert_chain(*map(str, certs["intruder-01"]))
        intruder.tls_set_context(ctx)
        granted: list[int] = []
        intruder.on_subscribe = lambda _c, _u, _m, rcs, _p: granted.extend(int(r.value) for r in rcs)
        intruder.connect("localhost", port)
        intruder.loop_start()
        if args.no_intruder:
            print("reference: no intruder")
        else:
            intruder.subscribe("$share/labedge/rde/+/up/#", qos=1)
            wait(lambda: granted, 10, "the intruder's SUBACK")
            print(f"intruder's $share subscription: {'GRANTED' if granted[0] < 0x80 else f'refused ({granted[0]:#x})'}")
        watch, outside = tmp / "watch", tmp / "outside"
        watch.mkdir()
        outside.mkdir()
        dc, dk = certs["dev-01"]
        (tmp / "agent.toml").write_text(
            f'device_id = "dev-01"\nspool_dir = "{tmp / "spool"}"\nstate_dir = "{tmp / "state"}"\n'
            f'log_dir = "{tmp / "logs"}"\n[web]\nenabled = false\n[upload]\nbroker = "mqtts://localhost:{port}"\n'
            f'ca_file = "{ca}"\ncert_file = "{dc}"\nkey_file = "{dk}"\n[[instruments]]\nid = "i"\n'
            f'watch = ["{watch}"]\nsettle_seconds = 0.5\nunpaired_policy = "send"\nhold_seconds = 0\n')
        procs.append(subprocess.Popen([sys.executable, "-m", "agent", "run", "-c", str(tmp / "agent.toml")],
                                      cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        db = tmp / "state" / "state.sqlite3"

        def delivered() -> int:
            try:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
                try:
                    return con.execute("SELECT count(*) FROM packages WHERE state='delivered'").fetchone()[0]
                finally:
                    con.close()
            except sqlite3.Error:
                return 0
        for i in range(args.files):
            write_random(outside / f"m{i}.bin", args.mib * MiB)
        time.sleep(2)  # the agent's start-up (imports, connect) is not part of the figure
        t0 = time.monotonic()
        for i in range(args.files):
            os.rename(outside / f"m{i}.bin", watch / f"m{i}.bin")
        deadline = t0 + args.timeout
        while delivered() < args.files and time.monotonic() < deadline:
            time.sleep(0.1)
        n = delivered()
        print(f"{args.files} x {args.mib} MiB from a normal device with the intruder connected: {n} delivered in "
              f"{time.monotonic() - t0:.1f} s" + ("" if n == args.files else f" (gave up after {args.timeout:.0f} s)"))
        intruder.loop_stop()
        intruder.disconnect()
    finally:
        if b is not None:
            b.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
