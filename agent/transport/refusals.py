"""What the user is told when the broker refuses a publish (a PUBACK reason code of 0x80 or more).

Pure wording, kept apart from the uploader so every refusal reads the same in the log, the status
and the tray, and a test can check each sentence without a broker that misbehaves on cue.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from wire.reason_codes import NOT_AUTHORIZED, PACKET_TOO_LARGE, QUOTA_EXCEEDED


@dataclass(frozen=True)
class Refusal:
    message: str
    #: pause new packages (an ACL that refuses one package refuses the next: no retry storm)
    pause: bool = False
    #: the package fails; a passing condition (a quota) only delays it
    fatal: bool = True


def refusal(reason: int, kind: str, topic: str, device_id: str, topic_prefix: str) -> Refusal:
    if reason == NOT_AUTHORIZED:
        return Refusal(f"the broker refused data on {topic}: not authorized (0x87). The device_id "
                       f"{device_id!r} must equal the certificate's CN and the broker ACL must allow "
                       f"'{topic_prefix}/%u/up/#'", pause=True)
    if reason == QUOTA_EXCEEDED:
        return Refusal("broker quota exceeded", fatal=False)
    if reason == PACKET_TOO_LARGE:
        return Refusal(f"the broker refused a {kind} as too large (0x95): lower [upload] chunk_size")
    return Refusal(f"the broker refused a {kind} on {topic} with reason code {reason:#x}")


#: Bounds on a receiver's "busy ... retry_after": a hostile or broken value must not stall or spin us.
BUSY_RETRY_BOUNDS = (1.0, 600.0)


def busy(body: dict) -> tuple[str, float, str]:
    """A receiver's "busy" answer: (its reason, seconds until the next offer, what the user is told)."""
    reason = str(body.get("reason") or "the receiver is busy")[:500]
    try:
        retry = float(body.get("retry_after", 30.0))
    except (TypeError, ValueError):
        retry = 30.0
    retry = min(max(retry, BUSY_RETRY_BOUNDS[0]), BUSY_RETRY_BOUNDS[1]) if math.isfinite(retry) else 30.0
    return reason, retry, (f"uploads wait: {reason}. Nothing is lost; the package stays queued on this PC "
                           f"and is offered again every {retry:.0f} s")
