"""`labedge receive`: the facility end of the protocol (and the model for writing another one).

One thread drives the MQTT connection; every message is handled to completion in order:
offer -> (create/continue the partial on disk) -> status; chunk -> write in place -> credit.
When all chunks are there, a finaliser thread does the slow part (fsync, verify every sha256 and
the bag, rename into the store), so a 20 GB bag never stalls the other devices' transfers or the
keepalive; the network thread then sends "stored". The network thread does not touch a partial
while it is being finalised.
A store that is full (or unwritable) answers "busy": the device keeps the package and asks again later.
"""
from __future__ import annotations

import errno
import logging
import os
import secrets
import shutil
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import paho.mqtt.client as mqtt

from wire.words import human
from wire import protocol as P
from wire.link import Link, LinkSettings
from facility.receiver_config import ReceiverConfig
from facility.links import record_supersedes
from facility.store import (PackageInvalid, Partial, expire_partials, final_dir, partial_dir, partial_ids,
                            stored_digests)
from wire.receipt import ReceiptSigner
from wire.tls import client_context
from wire import status as S
from wire import topics
from facility.catalog.writer import CatalogWriter

log = logging.getLogger(__name__)

ACK_FLUSH_SECONDS = 0.05
IDLE_CLOSE_SECONDS = 300.0
EXPIRY_SWEEP_SECONDS = 60.0
#: A failing store makes every chunk in flight fail: tell the device once, not once per chunk.
BUSY_REPEAT_SECONDS = 5.0
#: Bags verified at once: one huge bag must not hold back the small ones behind it; hashing drops
#: the GIL, so these run in parallel on the cores (and the disk) the receiver has.
FINALIZER_THREADS = 4
#: Offers longer than this (about 700 files) are checked on the parser thread, not the network thread.
OFFER_INLINE_BYTES = 64 * 1024
#: OSErrors no retry can fix: the name or the layout of the package, not the state of the store.
PERMANENT_ERRNOS = {errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.EILSEQ, errno.EINVAL}


class Receiver:
    def __init__(self, cfg: ReceiverConfig) -> None:
        self.cfg = cfg
        self.instance = f"{cfg.client_id}-{secrets.token_hex(4)}"
        self.partials: dict[tuple[str, str], Partial] = {}
        self.stats = {"offers": 0, "chunks": 0, "duplicates": 0, "stored": 0, "dedup_acks": 0, "rejected": 0,
                      "busy": 0}
        self.ack_every = max(1, cfg.window // 4)
        self._last_flush = 0.0
        self._last_sweep = 0.0
        self._busy_sent: dict[tuple[str, str], float] = {}
        self._finalizer = ThreadPoolExecutor(max_workers=FINALIZER_THREADS, thread_name_prefix="finalize")
        self._finalizing: dict[tuple[str, str], tuple[Partial, Future, float]] = {}
        self._parser = ThreadPoolExecutor(max_workers=1, thread_name_prefix="offers")
        self._parsing: dict[tuple[str, str], Future] = {}
        self._parsed_payload: dict[tuple[str, str], bytes] = {}
        cfg.store_dir.mkdir(parents=True, exist_ok=True)
        #: every stored package and every device status go to the catalog (facility/catalog/)
        self.catalog = CatalogWriter(cfg.catalog, cfg.client_id)
        ctx = client_context(cfg.ca_file, cfg.cert_file, cfg.key_file)
        # Devices delete their copy only on a receipt signed with a receiver certificate (security 2)
        self.signer = ReceiptSigner(cfg.cert_file, cfg.key_file)
        self.link = Link(LinkSettings(
            host=cfg.host, port=cfg.port, client_id=cfg.client_id, ca_file=cfg.ca_file, cert_file=cfg.cert_file,
            key_file=cfg.key_file, keepalive=cfg.keepalive, session_expiry=cfg.session_expiry,
            clean_start=cfg.session_expiry == 0, max_inflight=200, backoff_max=cfg.reconnect_max,
            subscriptions=[(P.receiver_filter(cfg.topic_prefix, cfg.share_group), 1),
                           # shared too: each status is recorded by one receiver of the group
                           (f"$share/{cfg.share_group}/{topics.status_filter(cfg.topic_prefix)}", 1)]),
            ctx, on_message=self._on_message, on_connected=self._on_connected)

    # ------------------------------------------------------------------ main loop
    def run(self, stop: threading.Event) -> int:
        log.info("receiver %s storing into %s (share group %s)", self.instance, self.cfg.store_dir,
                 self.cfg.share_group)
        self.catalog.start()
        try:
            while not stop.is_set():
                if not self.link.connected and not self.link.ensure_connected(stop.wait):
                    break
                self.link.loop(timeout=0.02)
                self._periodic()
        finally:
            # A bag being verified is finished (its lock is released if we are killed instead).
            self._finalizer.shutdown(wait=True, cancel_futures=True)
            self._parser.shutdown(wait=True, cancel_futures=True)
            for p in self.partials.values():
                p.close()
            self.link.close()
            self.catalog.stop()
        return 0

    def _on_connected(self, session_present: bool) -> None:
        # Nudge devices with unfinished transfers (we may have died mid-transfer): they ask again.
        for device, pid in partial_ids(self.cfg.store_dir):
            self._send(device, pid, "status", q=None)

    def _periodic(self) -> None:
        now = time.monotonic()
        if self._finalizing:
            self._collect_finalized()
        if self._parsing:
            self._collect_parsed()
        if now - self._last_flush >= ACK_FLUSH_SECONDS:
            self._last_flush = now
            for key, p in list(self.partials.items()):
                if key in self._finalizing:
                    continue
                self._flush_acks(p)
                if p.since_refresh or now - p.last_activity < 2.0:
                    p.refresh()
                    if p.complete:
                        self._finalize(p)
                elif now - p.last_activity > IDLE_CLOSE_SECONDS or not p.alive():
                    p.close()
                    self.partials.pop(key, None)
        if now - self._last_sweep >= min(EXPIRY_SWEEP_SECONDS, self.cfg.stalled_partial_seconds / 2):
            self._last_sweep = now
            for name in expire_partials(self.cfg.store_dir, self.cfg.partial_expiry_seconds,
                                        stalled_age=self.cfg.stalled_partial_seconds):
                device, pid = name.split("/", 1)
                if (device, pid) in self._finalizing:
                    continue
                p = self.partials.pop((device, pid), None)
                if p is not None:
                    p.close()

    # ------------------------------------------------------------------ messages
    def _on_message(self, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.endswith("/status"):
            self._on_status(msg.topic, msg.payload)
            return
        try:
            device, pid, kind = P.parse_up_topic(self.cfg.topic_prefix, msg.topic)
        except P.ProtocolError as exc:
            log.warning("ignored: %s", exc)
            return
        try:
            if kind == "offer":
                self._on_offer(device, pid, msg.payload)
            else:
                self._on_chunk(device, pid, msg.payload)
        except OSError as exc:  # disk full, permissions: do not ack, say why, keep serving others
            self._store_error(device, pid, exc)
        except Exception:  # noqa: BLE001 - one hostile message must not stop the facility's receiver
            log.exception("%s/%s: error handling %s", device, pid, kind)

    def _on_status(self, topic: str, payload: bytes) -> None:
        try:
            kind, device, _ = topics.parse_fleet_topic(self.cfg.topic_prefix, topic)
            if kind != "status" or len(payload) > S.MAX_STATUS_BYTES:
                raise P.ProtocolError(f"unexpected topic {topic!r} or a status over {S.MAX_STATUS_BYTES} bytes")
        except P.ProtocolError as exc:
            log.warning("status ignored: %s", exc)
            return
        self.catalog.status(device, bytes(payload))  # parsed and checked on the catalog's thread, not here

    def _catalog_stored(self, device: str, pid: str, final: Path, files: int | None, nbytes: int | None) -> None:
        self.catalog.package_stored(device, pid, final, files, nbytes)

    def _send(self, device: str, pid: str, kind: str, **fields: object) -> None:
        self.link.publish(P.down_topic(self.cfg.topic_prefix, device, pid), P.down_message(kind, pid, **fields))

    def _busy(self, device: str, pid: str, why: str, *, answer: bool = False) -> None:
        """Tell the device we cannot take its package now; it keeps it and offers again later."""
        now = time.monotonic()
        if not answer and now - self._busy_sent.get((device, pid), -BUSY_REPEAT_SECONDS) < BUSY_REPEAT_SECONDS:
            return
        self._busy_sent[(device, pid)] = now
        if len(self._busy_sent) > 10_000:
            self._busy_sent.clear()
        log.error("%s/%s: the receiver %s; the device was told to retry in %.0f s", device, pid, why,
                  self.cfg.busy_retry_seconds)
        self.stats["busy"] += 1
        self._send(device, pid, "busy", reason=f"the receiver {why}", retry_after=self.cfg.busy_retry_seconds)

    def _store_error(self, device: str, pid: str, exc: OSError, when: str = "write to its store") -> None:
        """busy for what time can fix (full disk, permissions), rejected for what it cannot (a name the
        file system refuses): a device told "busy" about a permanent error retries forever (security 4)."""
        if exc.errno in PERMANENT_ERRNOS:
            p = self.partials.pop((device, pid), None)
            if p is None:
                p = Partial.load(self.cfg.store_dir, device, pid, self.instance)
            if p is not None:
                p.discard()
            reason = f"the receiver's file system cannot store this package ({exc.strerror or exc}" + \
                     (f": {Path(exc.filename).name}" if exc.filename else "") + ")"
            log.error("%s/%s: rejected: %s", device, pid, reason)
            self.stats["rejected"] += 1
            self._send(device, pid, "rejected", reason=reason)
            return
        self._busy(device, pid, f"cannot {when} ({exc.strerror or exc})")

    def _short_of_space(self, p: Partial) -> str | None:
        need = p.missing_bytes()
        try:
            free = shutil.disk_usage(self.cfg.store_dir).free
        except OSError:
            return None
        if free - need >= self.cfg.min_free_bytes:
            return None
        return (f"has {human(free)} free in {self.cfg.store_dir} and this package needs {human(need)} more "
                f"(plus {human(self.cfg.min_free_bytes)} kept in reserve)")

    def _stored(self, device: str, pid: str) -> bool:
        final = final_dir(self.cfg.store_dir, device, pid)
        if not final.is_dir():
            return False
        self._send(device, pid, "stored", **self.signer.sign(device, pid, stored_digests(final)))
        self.stats["dedup_acks"] += 1
        # recorded again (a no-op if it is there): covers a receiver killed between store and catalog
        self._catalog_stored(device, pid, final, None, None)
        return True

    def _parse_offer(self, pid: str, payload: bytes) -> P.Offer:
        return P.parse_offer(pid, payload, max_bytes=self.cfg.max_package_bytes,
                             max_files=self.cfg.max_files_per_package)

    def _on_offer(self, device: str, pid: str, payload: bytes) -> None:
        self.stats["offers"] += 1
        if self._stored(device, pid):  # dedupe: acked again, never stored twice
            return
        if len(payload) > OFFER_INLINE_BYTES:
            # A long file list takes a while to check (0.4 s for 20,000 files): on the parser thread,
            # so another device's offer or chunk is never queued behind it (security 3). One per package.
            if (device, pid) not in self._parsing:
                self._parsing[(device, pid)] = self._parser.submit(self._parse_offer, pid, payload)
                self._parsed_payload[(device, pid)] = payload
            return
        try:
            offer = self._parse_offer(pid, payload)
        except P.ProtocolError as exc:
            self._reject_offer(device, pid, exc)
            return
        self._accept_offer(device, pid, payload, offer)

    def _reject_offer(self, device: str, pid: str, exc: Exception) -> None:
        log.warning("%s/%s: offer rejected: %s", device, pid, exc)
        self.stats["rejected"] += 1
        self._send(device, pid, "rejected", reason=str(exc))

    def _collect_parsed(self) -> None:
        for key, fut in list(self._parsing.items()):
            if not fut.done():
                continue
            del self._parsing[key]
            payload = self._parsed_payload.pop(key)
            try:
                offer = fut.result()
            except P.ProtocolError as exc:
                self._reject_offer(*key, exc)
                continue
            except Exception:  # noqa: BLE001 - a bug in one offer's checks must not stop the receiver
                log.exception("%s/%s: error checking an offer", *key)
                continue
            try:
                self._accept_offer(key[0], key[1], payload, offer)
            except OSError as exc:
                self._store_error(key[0], key[1], exc)

    def _accept_offer(self, device: str, pid: str, payload: bytes, offer: P.Offer) -> None:
        query = _query_of(payload)
        if (device, pid) in self._finalizing:  # every chunk is here; "stored" follows the verification
            self._send(device, pid, "status", q=query, missing=[], window=self.cfg.window)
            return
        p = self.partials.get((device, pid))
        if p is None or p.offer.tag != offer.tag or not p.alive():
            if p is not None:
                p.close()
            over = self._over_quota(device, pid, offer)
            if over is not None:
                self._busy(device, pid, over, answer=True)
                return
            p = Partial.open_for_offer(self.cfg.store_dir, device, offer, payload, self.instance)
            self.partials[(device, pid)] = p
        p.refresh()
        self._flush_acks(p)
        if p.complete:
            self._finalize(p)
            self._send(device, pid, "status", q=query, missing=[], window=self.cfg.window)
            return
        short = self._short_of_space(p)
        if short is not None:
            self._busy(device, pid, short, answer=True)
            return
        self._send(device, pid, "status", q=query, missing=p.missing_ranges(), window=self.cfg.window)

    def _over_quota(self, device: str, pid: str, offer: P.Offer) -> str | None:
        """Why this device may not open another partial now (per-device quotas), or None.

        One listdir plus at most max_partials_per_device small reads: bounded, whatever was declared."""
        others = [(device, name) for name in _partial_names(self.cfg.store_dir, device) if name != pid]
        if len(others) >= self.cfg.max_partials_per_device:
            return (f"already holds {len(others)} unfinished transfers from {device} (limit "
                    f"{self.cfg.max_partials_per_device}); this package is taken when one of them completes or expires")
        limit = self.cfg.max_partial_bytes_per_device or self.cfg.max_package_bytes
        declared = offer.total_bytes + sum(self._declared_bytes(k) for k in others)
        if declared > limit:
            return (f"would hold {human(declared)} of unfinished transfers from {device} (limit {human(limit)}); "
                    "this package is taken when others complete")
        return None

    def _declared_bytes(self, key: tuple[str, str]) -> int:
        p = self.partials.get(key)
        if p is not None:
            return p.offer.total_bytes
        try:
            raw = (partial_dir(self.cfg.store_dir, *key) / "offer.json").read_bytes()
            return P.parse_offer(key[1], raw, max_bytes=1 << 62).total_bytes
        except (OSError, P.ProtocolError):
            return 0

    def _partial(self, device: str, pid: str) -> Partial | None:
        p = self.partials.get((device, pid))
        if p is not None and p.alive():
            return p
        if p is not None:
            p.close()
            self.partials.pop((device, pid), None)
        p = Partial.load(self.cfg.store_dir, device, pid, self.instance)
        if p is not None:
            self.partials[(device, pid)] = p
        return p

    def _on_chunk(self, device: str, pid: str, payload: bytes) -> None:
        try:
            tag, seq, data = P.decode_chunk(payload)
        except P.ProtocolError as exc:
            log.warning("%s/%s: chunk dropped: %s", device, pid, exc)
            return
        if (device, pid) in self._finalizing:  # a late duplicate: we have every chunk already
            self.stats["duplicates"] += 1
            return
        p = self._partial(device, pid)
        if p is None:
            if not self._stored(device, pid):
                self._send(device, pid, "reoffer")  # e.g. the partial expired, or the store was reset
            return
        if tag != p.offer.tag:
            return  # a late chunk of an older offer of this package
        if seq >= p.offer.chunks or len(data) != p.offer.chunk_len(seq):
            log.warning("%s/%s: chunk %d has a bad sequence number or length; dropped", device, pid, seq)
            return
        if p.write_chunk(seq, data):
            self.stats["chunks"] += 1
        else:
            self.stats["duplicates"] += 1
        p.pending_acks.append(seq)
        if len(p.pending_acks) >= self.ack_every:
            self._flush_acks(p)
        if p.should_refresh(self.cfg.window):
            p.refresh()
            if p.complete:
                self._flush_acks(p)
                self._finalize(p)

    def _flush_acks(self, p: Partial) -> None:
        if p.pending_acks:
            self._send(p.device, p.offer.package_id, "credit", got=P.to_ranges(p.pending_acks))
            p.pending_acks.clear()

    def _finalize(self, p: Partial) -> None:
        """Hand a complete partial to the finaliser thread (once); `_collect_finalized` answers."""
        key = (p.device, p.offer.package_id)
        if key not in self._finalizing:
            self._finalizing[key] = (p, self._finalizer.submit(p.finalize), time.monotonic())

    def _collect_finalized(self) -> None:
        for key, (p, fut, t0) in list(self._finalizing.items()):
            if not fut.done():
                continue
            del self._finalizing[key]
            pid = p.offer.package_id
            try:
                digests = fut.result()
            except OSError as exc:  # disk full or permissions: keep the partial, the device asks again
                self._store_error(p.device, pid, exc, when="store the complete package")
                continue
            except PackageInvalid as exc:
                log.error("%s/%s: complete but invalid, discarded: %s", p.device, pid, exc)
                self.partials.pop(key, None)
                self.stats["rejected"] += 1
                self._send(p.device, pid, "rejected", reason=f"bag does not verify: {exc}")
                continue
            except Exception:  # noqa: BLE001 - a bug in one package's checks must not stop the receiver
                log.exception("%s/%s: error while storing; the partial is kept and tried again", p.device, pid)
                continue
            if digests is None:  # another receiver holds the lock, or a chunk went missing: it carries on
                continue
            self.partials.pop(key, None)
            self.stats["stored"] += 1
            log.info("stored %s/%s: %d file(s), %d bytes, verified in %.2f s", p.device, pid, len(p.offer.files),
                     p.offer.total_bytes, time.monotonic() - t0)
            try:
                record_supersedes(self.cfg.store_dir, p.device, pid, store_path(self.cfg, p.device, pid),
                                  p.offer.supersedes)
            except OSError as exc:  # the package is stored; the link is a courtesy, never a reason to refuse
                log.error("%s/%s: cannot record which package it supersedes (%s)", p.device, pid, exc)
            self._send(p.device, pid, "stored", **self.signer.sign(p.device, pid, digests))
            self._catalog_stored(p.device, pid, final_dir(self.cfg.store_dir, p.device, pid), len(p.offer.files),
                                 p.offer.total_bytes)


def _partial_names(root: Path, device: str) -> list[str]:
    try:
        return [n for n in os.listdir(partial_dir(root, device, "x").parent) if not n.startswith(".tmp-")]
    except FileNotFoundError:
        return []


def _query_of(payload: bytes) -> int | None:
    import json
    try:
        q = json.loads(payload).get("q")
    except (ValueError, AttributeError):
        return None
    return q if isinstance(q, int) else None


def store_path(cfg: ReceiverConfig, device: str, pid: str) -> Path:
    return final_dir(cfg.store_dir, device, pid)
