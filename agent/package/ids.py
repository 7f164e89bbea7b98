"""Package ids: unique, sortable by creation time, safe as a path segment and an MQTT topic level."""
from __future__ import annotations

import re
import secrets
import threading
import time

_lock = threading.Lock()
_last_ms = 0

PACKAGE_ID_RE = re.compile(r"^[0-9]{8}T[0-9]{9}Z-[0-9a-f]{8}$")


def new_package_id(now: float | None = None) -> str:
    """``20261122T052501123Z-1a2b3c4d``: UTC time to the millisecond, then 32 random bits.

    Milliseconds never repeat or go backwards within a process, so ids from one agent sort in
    creation order even if the wall clock steps back.
    """
    global _last_ms
    with _lock:
        ms = int((time.time() if now is None else now) * 1000)
        if ms <= _last_ms:
            ms = _last_ms + 1
        _last_ms = ms
    secs, milli = divmod(ms, 1000)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(secs))
    return f"{stamp}{milli:03d}Z-{secrets.token_hex(4)}"


def is_package_id(value: str) -> bool:
    return bool(PACKAGE_ID_RE.match(value))
