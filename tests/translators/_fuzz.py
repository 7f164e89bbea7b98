"""Fuzz cases run in ONE child process (``python _fuzz.py OUT_JSON FILE...``), each through the
worker's own ``run_request`` with a per-case alarm: truncation, bit flips, random trailing bytes.
Seeded by the file name, so a failing case can be re-run. Prints nothing; writes a JSON list."""
from __future__ import annotations

import json
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

CASE_LIMIT_S = 20


def mutations(data: bytes, seed: str) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    cut = data[: rng.randrange(1, max(2, len(data)))]
    flipped = bytearray(data)
    for _ in range(max(4, len(data) // 4000)):
        i = rng.randrange(len(flipped))
        flipped[i] ^= 1 << rng.randrange(8)
    tail = data + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    return [("truncated", cut), ("bitflip", bytes(flipped)), ("trailing", tail)]


def _alarm(signum, frame):  # noqa: ANN001
    raise TimeoutError("fuzz case exceeded its time limit")


def main(out: str, files: list[str]) -> int:
    """``files``: paths; a path prefixed with ``trailing:`` gets the trailing-bytes case only."""
    from translators.worker import run_request

    signal.signal(signal.SIGALRM, _alarm)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, name in enumerate(files):
            only = name.startswith("trailing:")
            src = Path(name.split(":", 1)[1] if only else name)
            for mode, blob in mutations(src.read_bytes(), src.name):
                if only and mode != "trailing":
                    continue
                case = Path(tmp) / f"{k}_{mode}"
                (case / "out").mkdir(parents=True)
                raw = case / src.name
                raw.write_bytes(blob)
                t0 = time.monotonic()
                entry = {"file": str(src), "mode": mode}
                signal.alarm(CASE_LIMIT_S)
                try:
                    run_request({"raw_files": [str(raw)], "out_dir": str(case / "out"), "translator": "auto"})
                    rep = json.loads((case / "out" / "labedge" / "translation_report.json").read_text("utf-8"))
                    entry.update(status=rep["status"], error=rep.get("error"), detail=rep.get("detail"),
                                 meta=(case / "out" / "meta" / "metadata.json").is_file())
                except TimeoutError as exc:
                    entry.update(status="timeout", error=str(exc))
                except BaseException as exc:  # noqa: BLE001 - the worker itself must never raise
                    entry.update(status="raised", error=f"{type(exc).__name__}: {exc}")
                finally:
                    signal.alarm(0)
                entry["elapsed_s"] = round(time.monotonic() - t0, 3)
                results.append(entry)
    Path(out).write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2:]))
