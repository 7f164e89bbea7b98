"""The catalog's operations: record a stored package (once, whichever receiver stored it), record
a device status, and the reads the fleet view needs."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

from facility.catalog.bag_facts import PackageFacts
from facility.catalog.db import CatalogError, Database, connect, redact
from facility.catalog.migrations import RECEIVER, Ledger, check_readable, migrate
from wire.status import merge_offline

__all__ = ["Catalog", "CatalogError", "open_catalog"]

PACKAGE_COLUMNS = ("device", "package_id", "instrument", "kind", "stored_at", "bytes", "files", "pairing",
                   "sample", "proposal", "translation", "translation_error", "receiver")


class Catalog:
    def __init__(self, db: Database, url: str) -> None:
        self.db, self.url = db, redact(url)

    @property
    def kind(self) -> str:
        return self.db.kind

    # ------------------------------------------------------------------ writes (the receiver)
    def record_packages(self, rows: list[tuple[str, str, PackageFacts, float, str]]) -> int:
        """(device, package_id, facts, stored_at, receiver) rows in one transaction; returns how many
        were new. The primary key (device, package_id) makes a second record of a package a no-op."""
        sql = (f"INSERT INTO packages ({', '.join(PACKAGE_COLUMNS)}) VALUES ({', '.join('?' * len(PACKAGE_COLUMNS))}) "
               "ON CONFLICT (device, package_id) DO NOTHING")
        new = 0
        with self.db.transaction():
            for device, pid, f, at, receiver in rows:
                d = asdict(f)
                new += max(0, self.db.execute(sql, (device, pid, d["instrument"], d["kind"], at, d["bytes"],
                                                    d["files"], d["pairing"], d["sample"], d["proposal"],
                                                    d["translation"], d["translation_error"], receiver)))
        return new

    def record_statuses(self, items: list[tuple[str, dict[str, Any], float]]) -> None:
        """(device, parsed status document, received_at) in one transaction.

        ``last_seen`` is the receive time of the last ONLINE document (the broker cannot stamp a will),
        ``offline_since`` the receive time of the first offline document after it. A batch is folded
        per device first (one read and one write each): a burst of heartbeats costs one row update."""
        by_device: dict[str, list[tuple[dict[str, Any], float]]] = {}
        for device, doc, at in items:
            by_device.setdefault(device, []).append((doc, at))
        with self.db.transaction():
            known: dict[str, tuple[Any, ...]] = {}
            names = list(by_device)
            for i in range(0, len(names), 500):  # one query for the batch, not one per device
                part = names[i:i + 500]
                for row in self.db.query("SELECT device, online, last_seen, offline_since, status, first_seen "
                                         f"FROM devices WHERE device IN ({', '.join('?' * len(part))})", part):
                    known[row[0]] = row[1:]
            for device, docs in by_device.items():
                prev = known.get(device)
                if prev:
                    was_online, last_seen, offline_since, text, first_seen = prev
                    try:
                        current: dict[str, Any] | None = json.loads(text)
                    except ValueError:
                        current = None
                    was: bool | None = bool(was_online)
                else:
                    was, last_seen, offline_since, current, first_seen = None, None, None, None, docs[0][1]
                events = []
                for doc, at in docs:
                    online = bool(doc.get("online"))
                    if online:
                        last_seen, offline_since, current = at, None, doc
                    else:  # keep what the device last said while online (wire.status.merge_offline)
                        current = merge_offline(current, doc)
                        if was or offline_since is None:
                            offline_since = at
                    if was is None or was != online:
                        events.append((device, at, int(online), doc.get("reason") or ("online" if online else None)))
                    was = online
                text = json.dumps(current, separators=(",", ":"), ensure_ascii=False)
                if prev:
                    self.db.execute("UPDATE devices SET online=?, status=?, received_at=?, last_seen=?, "
                                    "offline_since=?, statuses=statuses+? WHERE device=?",
                                    (int(bool(was)), text, docs[-1][1], last_seen, offline_since, len(docs), device))
                else:
                    self.db.execute("INSERT INTO devices (device, online, status, received_at, last_seen, "
                                    "offline_since, first_seen, statuses) VALUES (?,?,?,?,?,?,?,?)",
                                    (device, int(bool(was)), text, docs[-1][1], last_seen, offline_since, first_seen,
                                     len(docs)))
                for ev in events:
                    self.db.execute("INSERT INTO device_events (device, at, online, reason) VALUES (?,?,?,?)", ev)

    # ------------------------------------------------------------------ reads (the fleet view)
    def devices(self) -> list[dict[str, Any]]:
        """Every device the catalog knows: from a status, or only from packages it stored."""
        out: dict[str, dict[str, Any]] = {}
        for device, online, status, received_at, last_seen, offline_since, first_seen, n in self.db.query(
                "SELECT device, online, status, received_at, last_seen, offline_since, first_seen, statuses "
                "FROM devices"):
            try:
                doc = json.loads(status)
            except ValueError:
                doc = {}
            out[device] = {"device": device, "online": bool(online), "status": doc, "received_at": received_at,
                           "last_seen": last_seen, "offline_since": offline_since, "first_seen": first_seen,
                           "statuses": n}
        for device, last_stored, count in self.db.query(
                "SELECT device, MAX(stored_at), COUNT(*) FROM packages GROUP BY device"):
            d = out.setdefault(device, {"device": device, "online": None, "status": {}, "received_at": None,
                                        "last_seen": None, "offline_since": None, "first_seen": None,
                                        "statuses": 0})
            d["last_stored"], d["stored_packages"] = last_stored, count
        return sorted(out.values(), key=lambda d: d["device"])

    def packages(self, device: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        where, params = ("WHERE device=?", [device]) if device else ("", [])
        rows = self.db.query(f"SELECT {', '.join(PACKAGE_COLUMNS)} FROM packages {where} "
                             "ORDER BY stored_at DESC LIMIT ?", (*params, int(limit)))
        return [dict(zip(PACKAGE_COLUMNS, r)) for r in rows]

    def events(self, device: str, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT at, online, reason FROM device_events WHERE device=? ORDER BY at DESC LIMIT ?",
                             (device, int(limit)))
        return [{"at": a, "online": bool(o), "reason": r} for a, o, r in rows]

    def count_packages(self) -> int:
        return int(self.db.query("SELECT COUNT(*) FROM packages")[0][0])

    def close(self) -> None:
        self.db.close()


def open_catalog(url: str, *, readonly: bool = False, ledgers: tuple[Ledger, ...] = (RECEIVER,)) -> Catalog:
    """Open (and migrate) the catalog at ``url``: an SQLite file path or a postgresql:// URL.

    ``readonly`` (the fleet tools): never create or migrate; refuse a catalog this labedge cannot read.
    ``ledgers``: the migrations this caller writes or reads (the receiver's tables by default; the
    remote-config tools take only theirs, facility/catalog/migrations.py says why)."""
    db = connect(url, readonly=readonly)
    try:
        for ledger in ledgers:
            if readonly:
                check_readable(db, ledger)
            else:
                migrate(db, ledger)
    except CatalogError:
        db.close()
        raise
    except Exception as exc:  # noqa: BLE001 - driver errors become one sentence naming the catalog
        db.close()
        raise CatalogError(f"catalog {redact(url)}: cannot prepare its tables: {exc}") from None
    return Catalog(db, url)


def now() -> float:
    return time.time()
