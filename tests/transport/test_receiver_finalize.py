"""A big bag being verified must not stall the receiver: other devices' packages keep arriving.

The receiver runs in this process so that one device's verification can be held at a gate (standing
in for the minutes a 20 GB bag takes to re-hash); everything else is real: broker, mTLS, agents.
"""
from __future__ import annotations

import threading

from facility import store as receiver_store
from facility.receiver import Receiver
from facility.receiver_config import load_receiver_config
from transport_helpers import (DEVICES, AgentProc, ReceiverProc, agent_config, assert_exactly_once, db_counts,
                               make_packages, wait_for)


def test_other_devices_are_stored_while_a_big_bag_is_verified(tmp_path, broker, pki, monkeypatch):
    store = tmp_path / "store"
    rx_cfg = ReceiverProc(tmp_path / "rx", broker, pki, store).config  # its config file only; not started
    entered, release = threading.Event(), threading.Event()
    real_verify = receiver_store.Partial._verify

    def gated_verify(self, bag):
        if self.device == DEVICES[0]:
            entered.set()
            assert release.wait(180), "the test never released the gate"
        return real_verify(self, bag)
    monkeypatch.setattr(receiver_store.Partial, "_verify", gated_verify)

    receiver = Receiver(load_receiver_config(rx_cfg))
    stop = threading.Event()
    thread = threading.Thread(target=receiver.run, args=(stop,), daemon=True)
    thread.start()
    big_cfg = agent_config(tmp_path / "a", broker.url, pki, device=DEVICES[0])
    small_cfg = agent_config(tmp_path / "b", broker.url, pki, device=DEVICES[1])
    big = make_packages(big_cfg, [8 * 1024 * 1024], seed=1)
    small = make_packages(small_cfg, [300_000, 20_000], seed=2)
    agents = [AgentProc(big_cfg).start()]
    try:
        assert entered.wait(60), "the big package never reached verification"
        agents.append(AgentProc(small_cfg).start())
        wait_for(lambda: db_counts(small_cfg)["delivered"] == 2, 30, "the other device's packages, during the verify")
        assert not release.is_set() and db_counts(big_cfg)["delivered"] == 0
        assert receiver.stats["stored"] == 2
        release.set()
        wait_for(lambda: db_counts(big_cfg)["delivered"] == 1, 60, "the big package once verified")
        assert_exactly_once(store, {**big, **small})
    finally:
        release.set()
        for a in agents:
            a.kill()
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
