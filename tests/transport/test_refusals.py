"""The words for a broker's refusal and a receiver's "busy", and the bounds on a hostile retry_after."""
from __future__ import annotations

import pytest

from agent.transport.refusals import BUSY_RETRY_BOUNDS, busy, refusal
from wire.reason_codes import NOT_AUTHORIZED, PACKET_TOO_LARGE, QUOTA_EXCEEDED


def test_not_authorized_names_the_device_and_the_acl_and_pauses() -> None:
    r = refusal(NOT_AUTHORIZED, "chunk", "rde/dev-01/up/p/chunk", "dev-01", "rde")
    assert r.fatal and r.pause
    assert "'dev-01'" in r.message and "rde/%u/up/#" in r.message and "0x87" in r.message


def test_quota_only_delays_and_too_large_names_the_setting() -> None:
    assert not refusal(QUOTA_EXCEEDED, "chunk", "t", "d", "rde").fatal
    r = refusal(PACKET_TOO_LARGE, "offer", "t", "d", "rde")
    assert r.fatal and not r.pause and "chunk_size" in r.message
    assert "0x99" in refusal(0x99, "offer", "t", "d", "rde").message


@pytest.mark.parametrize("value, expected", [(5, 5.0), ("12", 12.0), (float("nan"), 30.0), ("soon", 30.0),
                                             (None, 30.0), (-1, BUSY_RETRY_BOUNDS[0]), (1e12, BUSY_RETRY_BOUNDS[1]),
                                             (float("inf"), 30.0)])
def test_busy_retry_is_bounded_whatever_the_receiver_sends(value, expected) -> None:
    reason, retry, told = busy({"reason": "store full", "retry_after": value})
    assert retry == expected
    assert reason == "store full" and "Nothing is lost" in told and f"every {expected:.0f} s" in told


def test_busy_reason_is_cut_to_500_characters() -> None:
    assert len(busy({"reason": "x" * 10_000})[0]) == 500
