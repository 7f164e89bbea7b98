"""Finding 8: a device cannot grow the broker with retained or oversized messages. The shipped
config (labedge_guard plugin) allows retained messages only on the small per-device status and
config topics, bounds sizes per topic class, and leaves the status channel working."""
from __future__ import annotations

import signal

import paho.mqtt.client as mqtt

from sec_helpers import RawClient
from transport_helpers import Broker, wait_for

MiB = 1024 * 1024
NOT_AUTHORIZED = 0x87


def _rc(client: RawClient, topic: str, payload: bytes, retain: bool) -> int:
    """The PUBACK reason code of one QoS1 publish."""
    got: dict[int, int] = {}
    client.client.on_publish = lambda _c, _u, mid, rc, _p: got.__setitem__(mid, int(rc.value))
    info = client.client.publish(topic, payload, qos=1, retain=retain)
    wait_for(lambda: info.mid in got, 30, f"PUBACK for {topic}")
    return got[info.mid]


def test_retained_and_oversized_messages_are_refused_and_status_still_works(tmp_path, pki):
    broker = Broker(tmp_path / "broker", pki)
    acl = tmp_path / "broker" / "labedge.acl"
    # what the fleet work adds: each device writes its own status (retained, small)
    acl.write_text(acl.read_text().replace("pattern write rde/%u/up/#\n",
                                           "pattern write rde/%u/up/#\npattern write rde/%u/status\n"))
    broker.start()
    dev = RawClient(broker.port, pki.ca, *pki.certs["dev-01"], client_id="dev-01")
    try:
        rss0 = broker.rss_kib()
        big = b"\0" * (20 * MiB)
        for i in range(5):
            assert _rc(dev, f"rde/dev-01/up/20261201T000000000Z-0000000{i}/chunk", big, True) == NOT_AUTHORIZED
        assert _rc(dev, "rde/dev-01/up/20261201T000000000Z-00000009/offer", big, False) == NOT_AUTHORIZED
        assert _rc(dev, "rde/dev-01/status", b"x" * (65 * 1024), True) == NOT_AUTHORIZED
        # the status channel works (0x10: accepted and retained, nobody subscribed yet)
        assert _rc(dev, "rde/dev-01/status", b'{"state": "ok"}', True) in (0, 0x10)
        assert broker.rss_kib() - rss0 < 48 * 1024, "the broker kept what it refused"
        log = broker.log.read_text()
        assert "labedge_guard: refused retained" in log and "labedge_guard: refused 20971520-byte publish" in log
        broker.stop(signal.SIGTERM)  # saves mosquitto.db: only the small status survives a restart
        db = (tmp_path / "broker" / "data" / "mosquitto.db").read_bytes()
        assert len(db) < 256 * 1024 and b'{"state": "ok"}' in db, len(db)
    finally:
        dev.close()
        broker.stop()
