"""Finding 3: a receiver's cost is bounded by what a device actually sends. Offers that declare huge
sizes, tiny chunks or many files are rejected or cost nothing until chunks arrive, quotas bound one
device's open partials, partials that never progress expire quickly, and a normal device's offer is
answered at once while a hostile one is being handled."""
from __future__ import annotations

import hashlib

from sec_helpers import Device, offer_payload
from transport_helpers import ReceiverProc, _rss_kib, wait_for
from wire.protocol import MAX_CHUNKS, MIN_CHUNK_SIZE, encode_chunk, offer_tag, FileEntry

TAGS = ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "tagmanifest-sha256.txt")
ZERO = hashlib.sha256(b"").hexdigest()
TiB = 1 << 40


def _files(*data: tuple[str, int]) -> list[tuple[str, int, str]]:
    return [(t, 100, ZERO) for t in TAGS] + [(p, n, ZERO) for p, n in data]


def _pid(n: int, tail: str = "eeeeeeee") -> str:
    return f"20261201T0000000{n:02d}Z-{tail}"


def _answer_time(dev: Device, pid: str, t0: float, timeout: float) -> float:
    wait_for(lambda: dev.last(pid), timeout, f"the receiver's answer to {pid}")
    return dev.replies[pid][0][0] - t0


def test_hostile_offers_cost_what_is_sent_and_never_stall_others(tmp_path, broker, pki):
    store = tmp_path / "store"
    rx = ReceiverProc(tmp_path / "rx", broker, pki, store, max_package_bytes=2 * TiB,
                      max_partials_per_device=2, stalled_partial_seconds=2).start_connected()
    evil, good = Device(broker.port, pki, "dev-02"), Device(broker.port, pki, "dev-01")
    try:
        rss0 = _rss_kib(rx.proc.pid)
        # 1 TiB in 1 KiB chunks (a 700-byte offer): refused at once, not a 1 GiB bitmap and minutes of CPU
        evil.offer(_pid(1), offer_payload(_pid(1), 1024, _files(("data/huge.bin", TiB))))
        t0 = good.offer(_pid(1, "00000001"), offer_payload(_pid(1, "00000001"), 65536, _files(("data/x", 5000))))
        assert _answer_time(good, _pid(1, "00000001"), t0, 10) < 2.0
        wait_for(lambda: evil.last(_pid(1)), 10, "the answer to the 1 TiB offer")
        assert evil.last(_pid(1))["type"] == "rejected" and "chunk_size" in evil.last(_pid(1))["reason"]
        # at the bounds (MAX_CHUNKS chunks, the floor chunk size): accepted, answered fast, small
        big = MAX_CHUNKS * MIN_CHUNK_SIZE - 4 * 100  # the tag files fill the rest of the last chunk
        evil.offer(_pid(2), offer_payload(_pid(2), MIN_CHUNK_SIZE, _files(("data/big.bin", big))))
        t0 = good.offer(_pid(2, "00000002"), offer_payload(_pid(2, "00000002"), 65536, _files(("data/x", 5000))))
        assert _answer_time(good, _pid(2, "00000002"), t0, 10) < 2.0
        wait_for(lambda: evil.last(_pid(2)), 10, "the answer to the bounded offer")
        assert evil.last(_pid(2))["missing"] == [[0, MAX_CHUNKS]]
        # 20,000 declared files: no file is created before its chunk arrives
        many = _files(*[(f"data/f{i:05d}", 1) for i in range(20_000 - 4)])
        evil.offer(_pid(3), offer_payload(_pid(3), 65536, many))
        wait_for(lambda: evil.last(_pid(3)), 20, "the answer to the many-files offer")
        assert evil.last(_pid(3))["type"] == "status"
        assert sum(1 for _ in (store / ".partial").rglob("*")) < 40, "declared files were created up front"
        # too many files, and a third open partial (quota 2): refused / busy
        evil.offer(_pid(4), offer_payload(_pid(4), 65536, _files(*[(f"data/g{i}", 1) for i in range(20_001)])))
        wait_for(lambda: evil.last(_pid(4)), 20, "the answer to the too-many-files offer")
        assert evil.last(_pid(4))["type"] == "rejected" and "files" in evil.last(_pid(4))["reason"]
        evil.offer(_pid(5), offer_payload(_pid(5), 65536, _files(("data/y", 10))))
        wait_for(lambda: evil.last(_pid(5)), 10, "the answer to the over-quota offer")
        assert evil.last(_pid(5))["type"] == "busy" and "unfinished transfers" in evil.last(_pid(5))["reason"]
        assert _rss_kib(rx.proc.pid) - rss0 < 64 * 1024, "the receiver grew by more than 64 MiB"
        # a partial that never gets a chunk expires within seconds, not days
        wait_for(lambda: not (store / ".partial" / "dev-02").exists() or not any((store / ".partial" / "dev-02").iterdir()),
                 20, "never-progressing partials to expire")
        assert rx.alive()
    finally:
        evil.close()
        good.close()
        rx.kill()


def test_progressing_partial_is_kept_and_completes(tmp_path, broker, pki):
    """The fast expiry takes only partials without a single chunk: one that progresses stays."""
    store = tmp_path / "store"
    rx = ReceiverProc(tmp_path / "rx", broker, pki, store, stalled_partial_seconds=2).start_connected()
    dev = Device(broker.port, pki, "dev-01")
    try:
        files = _files(("data/a.bin", 3 * MIN_CHUNK_SIZE))
        pid = _pid(9)
        dev.offer(pid, offer_payload(pid, MIN_CHUNK_SIZE, files))
        wait_for(lambda: dev.last(pid), 10, "status")
        tag = offer_tag(pid, MIN_CHUNK_SIZE, [FileEntry(*f) for f in files])
        dev.chunk(pid, encode_chunk(tag, 0, b"\0" * MIN_CHUNK_SIZE))
        wait_for(lambda: (dev.last(pid) or {}).get("type") == "credit", 10, "credit for chunk 0")
        idle = _pid(10)  # offered, never sent: its expiry proves the sweep ran past the progressing one
        dev.offer(idle, offer_payload(idle, MIN_CHUNK_SIZE, files))
        wait_for(lambda: dev.last(idle), 10, "status of the idle offer")
        wait_for(lambda: not (store / ".partial" / "dev-01" / idle).exists(), 20, "the idle partial to expire")
        assert (store / ".partial" / "dev-01" / pid / "offer.json").exists()
    finally:
        dev.close()
        rx.kill()
