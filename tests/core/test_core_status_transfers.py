"""`status` never shows a delivered package, or a stopped agent's transfer, as "uploading".

The uploader's snapshot reaches the state DB about once a second, the queue's state at once: a
status read in between used to print "uploading <id>: 0 B of 202 KiB" next to "0 uploading,
5 delivered" (seen on the demo's first `labedge status`)."""
from __future__ import annotations

from core_helpers import instrument, write_config

from agent.config import load_config
from agent.instance import Instance
from agent.state.store import StateStore
from agent.status import build_status, format_status


def _snapshot(ids: list[str]) -> dict:
    transfers = [{"package_id": i, "state": "sending", "done_bytes": 0, "total_bytes": 2048, "chunks": 2,
                  "sent_chunks": 0, "rounds": [], "waiting_for_receiver": False, "receiver_busy": None}
                 for i in ids]
    return {"facts": {"upload": {"connected": True, "broker": "mqtts://127.0.0.1:1", "client_id": "test-pc-01",
                                 "last_error": None, "transfers": transfers, "recent": []}},
            "problems": {}, "progress": {}}


def test_a_transfer_whose_package_is_delivered_or_whose_agent_stopped_is_not_shown(tmp_path):
    watch = tmp_path / "watch"
    watch.mkdir()
    path = write_config(tmp_path, [instrument(watch)])
    with path.open("a", encoding="utf-8") as f:
        f.write(f'\n[upload]\nbroker = "mqtts://127.0.0.1:1"\nca_file = "{tmp_path}/ca.pem"\n'
                f'cert_file = "{tmp_path}/pc.pem"\nkey_file = "{tmp_path}/pc.key"\n')
    cfg = load_config(path)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = StateStore(cfg.state_db)
    for pid in ("20260101T000000000Z-aaaaaaaa", "20260101T000000000Z-bbbbbbbb"):
        store.add_package(package_id=pid, instrument_id="xrd-1", path=str(tmp_path / pid), nbytes=2048, files=[])
        assert store.claim_for_upload(pid)
    store.set_state("20260101T000000000Z-aaaaaaaa", "delivered")  # the snapshot has not caught up yet
    store.set_health("agent", _snapshot(["20260101T000000000Z-aaaaaaaa", "20260101T000000000Z-bbbbbbbb"]))
    store.close()
    running = Instance(cfg).claim()  # this test process holds the agent's locks: "running"
    try:
        st = build_status(cfg)
        assert st["agent"]["running"]
        assert [t["package_id"] for t in st["upload"]["transfers"]] == ["20260101T000000000Z-bbbbbbbb"]
        text = format_status(st)
        assert "uploading 20260101T000000000Z-bbbbbbbb" in text
        assert "uploading 20260101T000000000Z-aaaaaaaa" not in text, text
    finally:
        running.release()
    st = build_status(cfg)  # the agent stopped mid-upload: its last snapshot uploads nothing now
    assert not st["agent"]["running"] and st["upload"]["transfers"] == []
    assert "uploading 2026" not in format_status(st)
