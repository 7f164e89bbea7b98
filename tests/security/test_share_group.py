"""Finding 1: a device must not be able to join the receivers' share group (in any topic form),
and every other device's packages must still arrive while such an intruder is connected."""
from __future__ import annotations

import time

from agent.config import load_config
from agent.runner import Agent
from sec_helpers import RawClient
from transport_helpers import ReceiverProc, agent_config, assert_exactly_once, make_packages, stored, wait_for

SHARE_FORMS = ["$share/labedge/rde/+/up/#", "$share/labedge/rde/#", "$share/labedge/#", "$share/labedge/+/+/up/#",
               "$share/labedge/rde/dev-01/up/#", "$share/other/rde/+/up/#"]


def test_device_cannot_join_the_receivers_share_group(tmp_path, broker, pki):
    store = tmp_path / "store"
    rx = ReceiverProc(tmp_path / "rx", broker, pki, store).start_connected()
    intruder = RawClient(broker.port, pki.ca, *pki.certs["dev-02"], client_id="dev-02")
    try:
        mids = {intruder.subscribe(topic): topic for topic in SHARE_FORMS}
        wait_for(lambda: len(intruder.subacks) == len(mids), 10, "SUBACKs for the intruder")
        granted = {mids[m]: rc for m, rc in intruder.subacks.items() if rc[0] < 0x80}
        assert granted == {}, f"the broker let a device into a share group: {granted}"
        assert "labedge_guard: refused shared subscription" in broker.log.read_text()

        # ... and the real device's packages arrive in full while the intruder stays connected
        cfg = agent_config(tmp_path / "agent", broker.url, pki, device="dev-01")
        expected = make_packages(cfg, [300_000, 300_000, 300_000])
        agent = Agent(load_config(cfg))
        t0 = time.monotonic()
        agent.start()
        try:
            wait_for(lambda: len(stored(store)) == 3, 40, "every package to arrive with an intruder connected")
        finally:
            assert agent.stop() == []
        assert time.monotonic() - t0 < 40
        assert_exactly_once(store, expected)
        assert intruder.messages == []
    finally:
        intruder.close()
        rx.kill()
