"""Receiver cost of hostile offers (security finding 3), and a normal device's delivery next to them.

    .venv/bin/python bench/bench_hostile_offers.py [--declared-gib 8] [--files 100000] [--code DIR]

Real mosquitto (shipped config) + `labedge receive`. One hostile device sends offers that cost it a
few hundred bytes: DECLARED GiB in 1 KiB chunks, and FILES one-byte files, never completed. A normal
device (paho, same protocol) offers a small package right after each and we time its status reply
(= how long the hostile offer stalled everybody) and the receiver's peak RSS, plus inodes left in
the partial store. ``--code DIR`` runs the RECEIVER from another checkout (e.g. an export of main),
so before/after come from one script on one machine.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import ssl
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from _broker import BenchBroker, start_broker, wait  # noqa: E402
from bench_transport import Peak  # noqa: E402

GiB = 1 << 30
TAGS = ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "tagmanifest-sha256.txt")
ZERO = hashlib.sha256(b"").hexdigest()


def offer(pid: str, chunk_size: int, files: list[tuple[str, int, str]]) -> bytes:
    from wire.protocol import FileEntry, offer_tag
    tag = offer_tag(pid, chunk_size, [FileEntry(*f) for f in files])
    total = sum(f[1] for f in files)
    return json.dumps({"v": 1, "type": "offer", "package_id": pid, "q": 1, "chunk_size": chunk_size,
                       "total_bytes": total, "chunks": -(-total // chunk_size), "tag": tag.hex(),
                       "files": [list(f) for f in files]}).encode()


class Client:
    def __init__(self, port: int, ca: Path, cert: Path, key: Path, cid: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
        ctx = ssl.create_default_context(cafile=str(ca))
        ctx.load_cert_chain(str(cert), str(key))
        self.c.tls_set_context(ctx)
        self.got: dict[str, tuple[float, dict]] = {}
        self.c.on_message = lambda _c, _u, m: self.got.setdefault(m.topic.split("/")[-1],
                                                                   (time.monotonic(), json.loads(m.payload)))
        self.c.connect("localhost", port)
        self.c.subscribe(f"rde/{cid}/down/#", qos=1)
        self.c.loop_start()
        self.cid = cid

    def offer(self, pid: str, payload: bytes) -> float:
        t0 = time.monotonic()
        self.c.publish(f"rde/{self.cid}/up/{pid}/offer", payload, qos=1).wait_for_publish(30)
        return t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--declared-gib", type=float, default=8.0)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--code", type=Path, default=REPO, help="checkout whose receiver runs")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="labedge-hostile-"))
    b: BenchBroker | None = None
    try:
        b = start_broker(tmp, ("evil-01", "good-01", "labedge-receiver"))
        port, ca, certs = b.port, b.ca, b.certs
        rx = b.start_receiver(code=args.code, extra='log_level = "INFO"\n',
                              env={**os.environ, "PYTHONPATH": str(args.code)})
        evil, good = Client(port, ca, *certs["evil-01"], "evil-01"), Client(port, ca, *certs["good-01"], "good-01")
        small = [(t, 100, ZERO) for t in TAGS] + [("data/x.bin", 10_000, ZERO)]
        # warm-up: the normal device's reply time with nobody hostile around
        t0 = good.offer("20261201T000000000Z-00000000", offer("20261201T000000000Z-00000000", 65536, small))
        wait(lambda: "20261201T000000000Z-00000000" in good.got, 30, "warm-up reply")
        base = good.got["20261201T000000000Z-00000000"][0] - t0
        print(f"normal device's status reply, nobody hostile: {base * 1000:.0f} ms")
        base_rss = Peak([rx.pid])
        time.sleep(0.2)
        rss0 = base_rss.stop()[rx.pid]
        cases = [("declared", f"{args.declared_gib:g} GiB in 1 KiB chunks",
                  [(t, 100, ZERO) for t in TAGS] + [("data/huge.bin", int(args.declared_gib * GiB), ZERO)], 1024),
                 ("files", f"{args.files} one-byte files",
                  [(t, 100, ZERO) for t in TAGS] + [(f"data/f{i:06d}", 1, ZERO) for i in range(args.files)], 65536),
                 ("at-bound-chunks", "16 GiB in 16 KiB chunks (2^20 chunks, the new bound)",
                  [(t, 100, ZERO) for t in TAGS] + [("data/big.bin", (1 << 34) - 400, ZERO)], 16384),
                 ("at-bound-files", "20,000 one-byte files (the new bound)",
                  [(t, 100, ZERO) for t in TAGS] + [(f"data/g{i:06d}", 1, ZERO) for i in range(19_996)], 65536)]
        for n, (name, what, files, cs) in enumerate(cases, start=1):
            hpid, gpid = f"20261201T00000000{n}Z-eeeeeeee", f"20261201T00000000{n}Z-99999999"
            payload = offer(hpid, cs, files)
            peak = Peak([rx.pid])
            evil.offer(hpid, payload)
            t0 = good.offer(gpid, offer(gpid, 65536, small))
            try:
                wait(lambda: gpid in good.got, 600, "the normal device's reply")
                stall = good.got[gpid][0] - t0
            except Exception:  # noqa: BLE001
                stall = float("inf")
            wait(lambda: hpid in evil.got, 600, "the hostile offer's reply")
            time.sleep(0.3)
            rss = peak.stop()[rx.pid]
            inodes = sum(1 for _ in (tmp / "store").rglob("*"))
            print(f"{what} ({len(payload)} byte offer): answer {evil.got[hpid][1]['type']!r}; normal device's "
                  f"reply after {stall:.2f} s; receiver peak RSS {rss / 1024:.0f} MiB (idle {rss0 / 1024:.0f} MiB); "
                  f"{inodes} inodes in the store")
    finally:
        if b is not None:
            b.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
