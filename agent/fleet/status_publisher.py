"""Publishes this device's status document (wire/status.py) over the shared channel.

On every change of what an administrator looks at, at once after each (re)connect, and every
``status_interval`` seconds as a heartbeat; retained and QoS 1, so the broker always holds the
latest. The MQTT will marks the device offline if the connection dies; a clean stop says so itself.
The document is computed by the same function as ``labedge status`` (agent/status.py), so the
PC and the fleet view never disagree.
"""
from __future__ import annotations

import hashlib
import logging
import platform
import shutil
import socket
import threading
import time
from typing import Any, Callable

from agent import __version__
from agent.config import Config
from agent.fleet.channel import FleetChannel
from agent.threads import Worker
from wire import status as S
from wire import topics

log = logging.getLogger(__name__)

#: How often the document is recomputed to see whether something changed.
CHECK_SECONDS = 1.0
#: Fields that change all the time without anything happening: they never count as a change.
VOLATILE = ("sent_at", "seq", "oldest_waiting_s", "spool", "connected_at")
#: While the agent starts, its own heartbeat is not written yet: wait this long for it at most.
STARTUP_GRACE = 10.0


def translator_versions() -> dict[str, str]:
    try:
        from translators.registry import load_registry
        return {e.name: str(e.version) for e in load_registry().entries if e.ok}
    except Exception:  # noqa: BLE001 - a broken plug-in shows in `labedge translators`, not here
        return {}


def config_version(cfg: Config) -> str:
    """A short content hash of the config file: which config a device runs, comparable across the fleet."""
    try:
        return hashlib.sha256(cfg.source.read_bytes()).hexdigest()[:12]
    except OSError:
        return "unknown"


def build_document(cfg: Config, st: dict[str, Any], *, translators: dict[str, str], config: dict[str, Any],
                   interval: int, connected_at: float | None) -> dict[str, Any]:
    """The status document from ``agent.status.build_status`` output (the one source of what is shown)."""
    pk = st.get("packages", {})
    cert = st.get("certificate") or {}
    problems = [{"kind": p.get("kind", "error") if p.get("kind") in ("error", "warning", "info") else "error",
                 "text": str(p.get("message", ""))} for p in st.get("problems", [])]
    if cert.get("warning"):
        problems.append({"kind": "warning", "text": cert["warning"]})
    for f in st.get("failed", [])[:3]:
        problems.append({"kind": "error", "text": f"package {f['id']} failed: {f.get('error')}"})
    try:
        disk_free = shutil.disk_usage(cfg.spool_dir).free
    except OSError:
        disk_free = None
    not_after = cert.get("not_after")
    summary = st.get("summary") or {}
    return {
        "v": S.VERSION, "device": cfg.device_id, "online": True, "sent_at": round(time.time(), 3),
        "connected_at": connected_at, "interval": interval,
        "agent_version": __version__, "translators": translators, "config": config,
        "queue": {k: int(pk.get(k, 0)) for k in ("queued", "uploading", "delivered", "failed")},
        "oldest_waiting_s": st.get("oldest_queued_age_seconds"),
        "spool": {"used": int(st.get("spool_bytes") or 0), "max": int(st.get("spool_max_bytes") or 0),
                  "disk_free": disk_free},
        "paused": st["intake"]["reason"] if st.get("intake", {}).get("paused") else
        ((st.get("control") or {}).get("words") if (st.get("control") or {}).get("paused") else None),
        "held": int((st.get("sheets") or {}).get("held") or 0),
        "problems": problems,
        "cert_not_after": _epoch(not_after) if not_after else None,
        "last_delivery": st.get("last_delivery"),
        "os": f"{platform.system()} {platform.release()}"[:100], "host": socket.gethostname()[:100],
        "pc_state": summary.get("state"), "pc_reason": (summary.get("reason") or None) and str(summary["reason"])[:300],
    }


def _epoch(iso: str) -> float | None:
    import datetime as dt
    try:
        return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class StatusPublisher(Worker):
    def __init__(self, cfg: Config, channel: FleetChannel, *, interval: int,
                 status_fn: Callable[[], dict[str, Any]] | None = None,
                 config_info: Callable[[], dict[str, Any]] | None = None) -> None:
        super().__init__("fleet-status")
        assert cfg.upload is not None
        self.cfg, self.channel, self.interval = cfg, channel, interval
        self.topic = topics.status_topic(cfg.upload.topic_prefix, cfg.device_id)
        self._status_fn = status_fn or self._read_status
        #: the remote-configuration feature replaces this to report its version and state
        self.config_info = config_info or (lambda: {"version": config_version(cfg), "state": "local"})
        self._translators = translator_versions()
        self._connected_at: float | None = None
        self._reconnected = threading.Event()
        self._last_sig: str | None = None
        self._last_sent = 0.0
        self._seq = 0
        self._born = time.monotonic()
        self.sent = 0
        channel.set_will(self._will)
        channel.on_connected(self._on_connected)
        channel.on_closing(self._farewell)

    # ------------------------------------------------------------------ channel callbacks (uploader thread)
    def _will(self) -> tuple[str, bytes, int, bool]:
        self._connected_at = round(time.time(), 3)
        return (self.topic, S.offline_document(self.cfg.device_id, "connection lost", self._connected_at,
                                               interval=self.interval), 1, True)

    def _on_connected(self) -> None:
        self._reconnected.set()
        self.wake()

    def _farewell(self) -> list[tuple[str, bytes, int, bool]]:
        return [(self.topic, S.offline_document(self.cfg.device_id, "stopped", self._connected_at,
                                                sent_at=round(time.time(), 3), interval=self.interval), 1, True)]

    # ------------------------------------------------------------------ the thread
    def _read_status(self) -> dict[str, Any]:
        from agent.state.store import StateStore
        from agent.status import build_status
        st = build_status(self.cfg)
        store = StateStore(self.cfg.state_db, readonly=True)
        try:
            row = store.conn.execute("SELECT MAX(delivered_at) FROM packages").fetchone()
            st["last_delivery"] = row[0] if row else None
        finally:
            store.close()
        return st

    def publish_now(self) -> None:
        self._reconnected.set()
        self.wake()

    def run(self) -> None:
        while not self.stopping:
            try:
                self._tick()
            except Exception:  # noqa: BLE001 - status must never take the agent down; say it in the log
                log.exception("fleet status: could not build the status document")
            self.wait(CHECK_SECONDS)

    def _tick(self) -> None:
        st = self._status_fn()
        if not (st.get("agent") or {}).get("running") and time.monotonic() - self._born < STARTUP_GRACE:
            return  # the first heartbeat is not in the state DB yet: "not running" would be a false alarm
        doc = build_document(self.cfg, st, translators=self._translators,
                             config=self.config_info(), interval=self.interval, connected_at=self._connected_at)
        sig = S.encode({k: v for k, v in doc.items() if k not in VOLATILE}).decode()
        now = time.monotonic()
        forced = self._reconnected.is_set()
        if sig == self._last_sig and not forced and now - self._last_sent < self.interval:
            return
        self._reconnected.clear()
        self._seq += 1
        doc["seq"] = self._seq
        self.channel.publish(self.topic, S.fit(doc), qos=1, retain=True)
        self._last_sig, self._last_sent = sig, now
        self.sent += 1
