"""The uploader: queued packages -> offer -> credit-limited chunks -> the receiver's "stored" ack.

A package is marked delivered ONLY when the receiver says it verified every sha256 and stored
the bag durably; a PUBACK just means the broker holds a message. See docs/protocol.md.
"""
from __future__ import annotations

import collections
import logging
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from agent.config import Config
from agent.fleet.channel import FleetChannel
from agent.health import Health
from agent.package.builder import Spool
from agent.state.store import StateStore
from agent.threads import Worker
from wire import protocol as P
from wire.link import Link, LinkSettings
from wire.reason_codes import NO_MATCHING_SUBSCRIBERS
from wire.tls import TransportError, client_context
from agent.transport.refusals import busy, refusal
from agent.transport.receipts import ReceiptCheck, digests_match
from agent.transport.transfer import BagUnreadable, Transfer, bag_files

log = logging.getLogger(__name__)

#: After the broker denies a publish, wait this long before starting the next package (no retry storm).
DENIED_PAUSE = 60.0
#: Busy packages resting (no slot) per upload slot, at most: a full receiver does not make us open
#: every queued package, and a later offer finds space as soon as there is some.
RESTING_PER_SLOT = 4


class Uploader(Worker):
    """``channel`` (agent/fleet/channel.py) lets the fleet features share this one connection."""

    def __init__(self, cfg: Config, store: StateStore, spool: Spool, health: Health,
                 channel: FleetChannel | None = None) -> None:
        super().__init__("uploader")
        self.channel = channel
        if channel is not None:
            channel.wakeup = self.wake
        assert cfg.upload is not None
        self.cfg, self.u, self.store, self.spool, self.health = cfg, cfg.upload, store, spool, health
        self.link: Link | None = None
        self.active: dict[str, Transfer] = {}
        self.mids: dict[int, tuple[str, str]] = {}     # mid -> (package id, "offer"/"chunk")
        self.in_flight = 0                              # chunks sent and not yet confirmed, all transfers
        self.history: collections.deque[dict[str, Any]] = collections.deque(maxlen=50)
        self._woken = threading.Event()
        self._woken.set()
        self._next_poll = 0.0
        self._paused_until = 0.0
        self._allow_at = 0.0                            # rate limit: earliest time of the next chunk
        self._last_facts = 0.0
        self.receipts = ReceiptCheck(self.u.ca_file, cfg.device_id, health)
        from agent.fleet.renew import CertificateRenewer  # renewal rides on this connection
        self.renewer = CertificateRenewer(cfg, health)

    # ------------------------------------------------------------------ thread
    def wake(self) -> None:
        self._woken.set()

    def run(self) -> None:
        try:
            while not self.stopping:
                if self.link is None and not self._make_link():
                    continue
                assert self.link is not None
                if not self.link.connected:
                    self._facts(force=True)
                    if not self.link.ensure_connected(self._sleep):
                        if self.stopping:
                            break
                        continue  # the renewer went back to the old certificate: a new link
                    self._facts(force=True)
                if self.renewer.relink:  # new certificate files on disk: reconnect with them
                    self._relink()
                    continue
                self.renewer.tick(self._publish_small)
                sending = self._pump()
                if self.channel is not None:
                    self.channel.service(self.link)
                self.link.loop(timeout=0.002 if sending else 0.05)
                self._facts()
        except Exception:
            log.exception("uploader crashed")
            raise
        finally:
            self._shutdown()

    def _sleep(self, seconds: float) -> bool:
        self._facts(force=True)
        if self.renewer.connect_failed():
            self._relink()
            return True
        return self.wait(seconds)

    def _relink(self) -> None:
        self.renewer.relink = False
        if self.link is not None:
            self.link.close()
        self.link = None

    def _publish_small(self, topic: str, payload: bytes) -> int | None:
        return self.link.publish(topic, payload) if self.link is not None else None

    def _make_link(self) -> bool:
        u = self.u
        try:
            ctx = client_context(u.ca_file, u.cert_file, u.key_file)
        except TransportError as exc:
            self._error(f"[upload] {exc}")
            self.wait(30.0)
            return False
        settings = LinkSettings(host=u.host, port=u.port, client_id=self.cfg.device_id, ca_file=u.ca_file,
                                cert_file=u.cert_file, key_file=u.key_file, keepalive=u.keepalive,
                                session_expiry=u.session_expiry, clean_start=False,
                                max_inflight=u.window + u.parallel + 8,
                                subscriptions=[(P.device_down_filter(u.topic_prefix, self.cfg.device_id), 1),
                                               (self.renewer.filter, 1),
                                               *(self.channel.subscriptions() if self.channel else [])],
                                backoff_max=u.reconnect_max)
        self.link = Link(settings, ctx, on_message=self._on_message, on_puback=self._on_puback,
                         on_connected=self._on_connected,
                         will=self.channel.will if self.channel is not None else None)
        return True

    def _shutdown(self) -> None:
        for pid in list(self.active):
            self._drop(pid, "queued", None)
        if self.link is not None:
            self._farewell()
            self.link.close()
        self._facts(force=True, connected=False)

    def _farewell(self) -> None:
        """A clean stop sends no will: publish the fleet channel's last words and wait (briefly) for them."""
        link = self.link
        if self.channel is None or link is None or not link.connected:
            return
        for topic, payload, qos, retain in self.channel.farewell():
            link.publish(topic, payload, qos=qos, retain=retain)
        deadline = time.monotonic() + 2.0
        while link.connected and link.pending_out() and time.monotonic() < deadline:
            link.loop(timeout=0.05)

    # ------------------------------------------------------------------ connection events
    def _on_connected(self, session_present: bool) -> None:
        self.health.clear_problem("upload:connect")
        self.renewer.connected()
        if self.channel is not None:
            self.channel.connected()
        if len(self.mids) > 10_000:  # paho re-sends its in-flight messages itself, under the same mids
            self.mids.clear()
        for t in list(self.active.values()):  # resume: ask the receiver what it lacks
            self._offer(t)

    def _error(self, msg: str, key: str = "upload:connect") -> None:
        self.health.problem(key, msg, kind="error")
        self.health.set("upload_last_error", msg)

    # ------------------------------------------------------------------ the work
    def _pump(self) -> bool:
        """Start transfers, send chunks within credit, re-ask on silence. True while chunks are going out."""
        now = time.monotonic()
        if self._woken.is_set() or now >= self._next_poll:
            self._woken.clear()
            self._next_poll = now + 1.0
            self._start_transfers(now)
        sending = False
        for t in list(self.active.values()):
            if t.busy_until:
                if now >= t.busy_until:
                    self._offer(t)
                continue
            if t.state == "sending":
                sending |= self._send_chunks(t)
            if t.package_id not in self.active:
                continue
            if now - max(t.last_heard, t.last_offer) > self.u.ack_timeout:
                log.info("%s: no reply from a receiver for %.0f s; asking again", t.package_id, self.u.ack_timeout)
                self._offer(t)
        return sending

    def _start_transfers(self, now: float) -> None:
        if now < self._paused_until:
            return
        # A package the receiver answered "busy" for rests without holding an upload slot, so one that
        # cannot be taken now (too big for the space left, say) never starves the others (security 4).
        while (sum(1 for t in self.active.values() if not t.busy_until) < self.u.parallel
               and len(self.active) < self.u.parallel * RESTING_PER_SLOT):
            row = self.store.next_queued()
            if row is None or row.id in self.active:
                return
            room = self.link.max_packet_size - P.PUBLISH_OVERHEAD - P.CHUNK_HEADER.size
            # receivers bound chunks per package (wire.protocol.MAX_CHUNKS): big packages get big chunks
            chunk = P.chunk_size_for(row.bytes or 0, min(self.u.chunk_size, room), room)
            if not self.store.claim_for_upload(row.id):
                continue  # superseded by a later version a moment ago: it never leaves the PC
            try:
                t = Transfer.open(row.id, Path(row.path), chunk)
                if t.offer.chunks > P.MAX_CHUNKS:  # the tag files made it a little bigger than recorded
                    t = Transfer.open(row.id, Path(row.path), P.chunk_size_for(t.offer.total_bytes, chunk, room))
            except BagUnreadable as exc:
                log.error("%s", exc)
                self.store.set_state(row.id, "failed", f"package cannot be read from the spool: {exc}")
                continue
            t.query = secrets.randbits(30)
            self.active[row.id] = t
            log.info("uploading %s: %d file(s), %d bytes, %d chunk(s) of %d bytes", row.id, len(t.offer.files),
                     t.offer.total_bytes, t.offer.chunks, chunk)
            self._offer(t)

    def _offer(self, t: Transfer) -> None:
        t.query += 1
        t.state = "offering"
        t.busy_until = 0.0
        self._forget_outstanding(t)
        t.last_offer = time.monotonic()
        payload = t.offer.to_json(t.query)
        if self.link is not None and len(payload) + P.PUBLISH_OVERHEAD > self.link.max_packet_size:
            # paho would send it anyway and the broker would drop the connection, again and again
            self._drop(t.package_id, "failed", f"the package's file list ({len(payload)} bytes for "
                       f"{len(t.offer.files)} files) exceeds the broker's maximum packet size "
                       f"({self.link.max_packet_size} bytes): zip the files or raise max_packet_size")
            return
        mid = self.link.publish(P.offer_topic(self.u.topic_prefix, self.cfg.device_id, t.package_id),
                                payload) if self.link is not None else None
        if mid is not None:
            self.mids[mid] = (t.package_id, "offer")

    def _forget_outstanding(self, t: Transfer) -> None:
        self.in_flight -= len(t.outstanding)
        t.outstanding.clear()

    def _send_chunks(self, t: Transfer) -> bool:
        u = self.u
        while t.to_send and len(t.outstanding) < t.window and self.in_flight < u.window:
            now = time.monotonic()
            if u.rate_limit and now < self._allow_at:
                return False
            seq = t.to_send[0]
            if seq in t.confirmed:
                t.to_send.popleft()
                continue
            try:
                payload = t.read_chunk_message(seq)
            except BagUnreadable as exc:
                self._drop(t.package_id, "failed", str(exc))
                return False
            mid = self.link.publish(P.chunk_topic(u.topic_prefix, self.cfg.device_id, t.package_id), payload)
            if mid is None:
                return False  # paho is full or the link just dropped: try again after the next loop
            t.to_send.popleft()
            self.mids[mid] = (t.package_id, "chunk")
            t.outstanding.add(seq)
            t.sent_chunks += 1
            if t.rounds:
                t.rounds[-1][1] += 1
            self.in_flight += 1
            if u.rate_limit:
                self._allow_at = max(self._allow_at, now) + len(payload) / u.rate_limit
        if not t.to_send and not t.outstanding:
            t.state = "waiting"
        return bool(t.to_send)

    # ------------------------------------------------------------------ broker acks
    def _on_puback(self, mid: int, reason: int) -> None:
        if self.renewer.on_puback(mid, reason):
            return
        entry = self.mids.pop(mid, None)
        if entry is None or reason < 0x80 and reason != NO_MATCHING_SUBSCRIBERS:
            return
        pid, kind = entry
        t = self.active.get(pid)
        if t is None:
            return
        topic = f"{self.u.topic_prefix}/{self.cfg.device_id}/up/{pid}/{kind}"
        if reason == NO_MATCHING_SUBSCRIBERS:
            if kind == "offer" and not t.no_subscriber:
                t.no_subscriber = True
                log.warning("%s: no receiver is subscribed at the broker; the package waits and is offered "
                            "again every %.0f s", pid, self.u.ack_timeout)
            return
        r = refusal(reason, kind, topic, self.cfg.device_id, self.u.topic_prefix)
        if not r.fatal:
            log.warning("%s: %s; will resume after %.0f s", pid, r.message, self.u.ack_timeout)
            return
        if r.pause:
            self._paused_until = time.monotonic() + DENIED_PAUSE
        msg = r.message
        log.error("%s: %s", pid, msg)
        self._error(msg, key="upload:denied")
        self._drop(pid, "failed", msg)

    # ------------------------------------------------------------------ receiver messages
    def _on_message(self, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.split("/")[2:4] == ["pki", "cert"]:
            self.renewer.handle(msg.topic, msg.payload)
            return
        if self.channel is not None and msg.topic.split("/")[2:3] != ["down"] \
                and self.channel.dispatch(msg.topic, bytes(msg.payload)):
            return
        try:
            pid = P.parse_down_topic(self.u.topic_prefix, self.cfg.device_id, msg.topic)
            body = P.parse_down(msg.payload)
        except P.ProtocolError as exc:
            log.warning("ignoring a message on %s: %s", msg.topic, exc)
            return
        t = self.active.get(pid)
        kind = body["type"]
        if t is None:
            if kind == "stored":
                self._late_stored(pid, body)
            return
        t.last_heard = time.monotonic()
        try:
            if kind == "status":
                self._on_status(t, body)
            elif kind == "credit":
                self._on_credit(t, body)
            elif kind == "stored":
                self._on_stored(t, body)
            elif kind == "reoffer":
                self._offer(t)
            elif kind == "busy":
                self._on_busy(t, body)
            elif kind == "rejected":
                reason = str(body.get("reason", "no reason given"))[:500]
                self._drop(pid, "failed", f"the receiver rejected the package: {reason}")
        except P.ProtocolError as exc:
            log.warning("%s: bad %s message from the receiver: %s", pid, kind, exc)
        t.no_subscriber = False
        if kind in ("status", "stored") and t.busy_reason is not None:
            t.busy_reason = None
            log.info("%s: the receiver takes the package again", t.package_id)
            self._clear_busy_problem()

    def _clear_busy_problem(self) -> None:
        if not any(x.busy_reason for x in self.active.values()):
            self.health.clear_problem("upload:receiver")

    def _on_busy(self, t: Transfer, body: dict[str, Any]) -> None:
        """The receiver cannot take the package now (its store is full, say): stop sending, keep the
        package, offer again after ``retry_after`` seconds, and tell the user why."""
        reason, retry, told = busy(body)
        t.to_send.clear()
        self._forget_outstanding(t)
        t.state = "receiver busy"
        t.busy_until = time.monotonic() + retry
        if reason != t.busy_reason:
            log.warning("%s: %s; the package stays queued here and is offered again every %.0f s", t.package_id,
                        reason, retry)
        t.busy_reason = reason
        self._woken.set()  # its slot is free: start the next package now
        self.health.problem("upload:receiver", told, kind="warning")

    def _on_status(self, t: Transfer, body: dict[str, Any]) -> None:
        if body.get("q") != t.query:
            # A receiver that (re)started, or a reply to an older question: ask once more, and only
            # act on the answer to that, so two answers never make us send the same chunks twice.
            if body.get("q") is None and (t.no_subscriber or time.monotonic() - t.last_offer > 1.0):
                self._offer(t)
            return
        missing = list(P.iter_ranges(body.get("missing", []), t.offer.chunks))
        t.confirmed = set(range(t.offer.chunks)).difference(missing)
        self._forget_outstanding(t)
        t.to_send = collections.deque(missing)
        t.window = max(1, min(int(body.get("window", 1)), self.u.window))
        t.rounds.append([len(missing), 0])
        t.state = "sending" if missing else "waiting"
        if len(t.rounds) > 1:
            log.info("%s: resuming, %d of %d chunk(s) missing at the receiver", t.package_id, len(missing),
                     t.offer.chunks)

    def _on_credit(self, t: Transfer, body: dict[str, Any]) -> None:
        for seq in P.iter_ranges(body.get("got", []), t.offer.chunks):
            t.confirmed.add(seq)
            if seq in t.outstanding:
                t.outstanding.discard(seq)
                self.in_flight -= 1
        if t.state == "sending" and not t.to_send and not t.outstanding:
            t.state = "waiting"

    def _on_stored(self, t: Transfer, body: dict[str, Any]) -> None:
        if not self.receipts.genuine(t.package_id, body):
            return
        if not digests_match(list(t.offer.files), body):
            self._drop(t.package_id, "failed", "the receiver acknowledged different manifests than this "
                       "package's; not marking it delivered")
            return
        self._drop(t.package_id, "delivered", None)

    def _late_stored(self, pid: str, body: dict[str, Any]) -> None:
        """A "stored" ack for a package we are not sending now (e.g. we restarted after sending it)."""
        row = self.store.package(pid)
        if row is None or row.state not in ("queued", "uploading"):
            return
        try:
            files = bag_files(Path(row.path))
        except BagUnreadable:
            return
        if digests_match(files, body) and self.receipts.genuine(pid, body):
            self._mark_delivered(pid)

    # ------------------------------------------------------------------ endings
    def _drop(self, pid: str, state: str, error: str | None) -> None:
        t = self.active.pop(pid, None)
        if t is not None:
            self._forget_outstanding(t)
            if t.busy_reason:
                self._clear_busy_problem()
            self.history.append({"package_id": pid, "result": state, "chunks": t.offer.chunks,
                                 "sent_chunks": t.sent_chunks, "rounds": [list(r) for r in t.rounds],
                                 "bytes": t.offer.total_bytes, "seconds": round(time.monotonic() - t.started, 3),
                                 "error": error})
        self._woken.set()  # a slot is free: start the next package now, not at the next poll
        if state == "delivered":
            self._mark_delivered(pid)
        else:
            self.store.set_state(pid, state, error)
        if state == "failed":
            log.error("package %s failed: %s", pid, error)
        self._facts(force=True)

    def _mark_delivered(self, pid: str) -> None:
        self.store.set_state(pid, "delivered")
        if self.u.delete_delivered:
            self.spool.release(pid)
        self.health.clear_problem("upload:denied")
        log.info("delivered %s (stored and verified by the receiver)", pid)

    # ------------------------------------------------------------------ status
    def _facts(self, *, force: bool = False, connected: bool | None = None) -> None:
        now = time.monotonic()
        if not force and now - self._last_facts < 0.5:
            return
        self._last_facts = now
        link = self.link
        up = link is not None and link.connected if connected is None else connected
        last_error = link.last_error if link is not None else self.health.get("upload_last_error")
        if up:
            self.health.clear_problem("upload:connect")
        elif last_error:
            self._error(last_error)
        current = [{"package_id": t.package_id, "state": t.state, "done_bytes": t.done_bytes(),
                    "total_bytes": t.offer.total_bytes, "chunks": t.offer.chunks, "sent_chunks": t.sent_chunks,
                    "rounds": [list(r) for r in t.rounds], "waiting_for_receiver": t.no_subscriber,
                    "receiver_busy": t.busy_reason}
                   for t in self.active.values()]
        self.health.set("upload", {"connected": bool(up), "broker": self.u.broker, "client_id": self.cfg.device_id,
                                   "last_error": None if up else last_error, "transfers": current,
                                   "recent": list(self.history)[-20:]})
