"""Remote-config benchmark: what checking a pushed document and reloading in process cost.

    .venv/bin/python bench/bench_remote.py [--n 200]

Prints, from one run: (1) opening and verifying one config bundle (JSON parse with the duplicate-key
guard, canonicalisation, the root-signed key list, the Ed25519 signature) against the reference of
json.loads + sha256 of the same bytes; (2) the full device-side check of a document (bundle, target,
version, merge, schema, `labedge check`'s offline checks); (3) `Agent.reload` (stop every component and
start them from the new config, in process) against a cold `Agent(cfg).start()` + stop of the same config.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "remote"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_time  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()
    import logging
    logging.disable(logging.WARNING)
    from agent.config import load_config
    from agent.remote import apply
    from agent.remote.state import RemoteState
    from agent.runner import Agent
    from remote_helpers import Facility, local_config
    from wire import signed

    root = Path(tempfile.mkdtemp(prefix="bench-remote-"))
    fac = Facility(root)
    text = "rescan_seconds = 30\n[[instruments]]\nid = \"inst\"\ninclude = [\"*.raw\", \"*.txt\"]\n"
    bundle = fac.bundle(text, 1, devices=["pc-1"])
    cfg = load_config(local_config(root / "pc", fac.root_pub))
    now = time.time()

    def open_it() -> None:
        trust = signed.TrustStore(signed.load_public_pem(fac.root_pub.read_bytes()))
        signed.open_bundle(bundle, trust, now, kind="config")

    ref = median_time(lambda: (json.loads(bundle), hashlib.sha256(bundle).digest()), args.n)
    t_open = median_time(open_it, args.n)
    t_check = median_time(lambda: apply.check_document(bundle, cfg, RemoteState(), now=now), max(20, args.n // 5))

    agent = Agent(cfg)
    agent.start()
    t_reload = median_time(lambda: agent.reload(load_config(cfg.source, check_watch_folders=False)), 7)
    agent.stop()

    def cold() -> None:
        a = Agent(load_config(cfg.source, check_watch_folders=False))
        a.start()
        a.stop()
    t_cold = median_time(cold, 7)
    print(json.dumps({"bundle_bytes": len(bundle),
                      "reference_json_sha256_ms": round(ref * 1e3, 3),
                      "open_bundle_ms": round(t_open * 1e3, 3), "open_vs_reference": round(t_open / ref, 1),
                      "device_check_ms": round(t_check * 1e3, 2),
                      "reload_ms": round(t_reload * 1e3, 1), "cold_start_stop_ms": round(t_cold * 1e3, 1),
                      "reload_vs_cold": round(t_reload / t_cold, 2),
                      "python": sys.version.split()[0], "cpus": os.cpu_count()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
