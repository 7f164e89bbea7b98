"""The facility's record of remote config: who pushed what and when, and what each device did.

It lives in the facility catalog (fleet.toml ``catalog_url``: SQLite or PostgreSQL, its own migration
ledger ``_config_migrations``: an older receiver must not refuse a catalog these tools migrated), so every administrator who shares the catalog sees the same history and
draws push ids and config versions from one counter: both are allocated inside one transaction under
:meth:`Database.lock_pushes`, so two pushes started together on two machines never get the same version
(a device would refuse the second as a replay). An append-only audit log (``remote-audit.jsonl``) stays
beside fleet.toml: the local trail of what this administrator's tools did. ``--abort`` marks a rollout
here and the pushing process (on any machine) stops before its next wave.
"""
from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any, Callable

from facility.catalog import Catalog, CatalogError, open_catalog
from wire.durable import append_audit
from facility.catalog.migrations import CONFIG_HISTORY

PUSH_COLUMNS = ("id", "version", "signer", "key_id", "targets", "fragment", "pushed_at", "state", "note", "host",
                "imported_from")
RESULT_COLUMNS = ("push_id", "device", "version", "state", "reason", "at")


class HistoryError(Exception):
    """The push history cannot be opened; the text says why and what to set."""


def history_catalog(url: str) -> Catalog:
    """The catalog with the history's own migrations applied, and only those (not the receiver's)."""
    return open_catalog(url, ledgers=(CONFIG_HISTORY,))


def open_history(catalog_url: str | None, fleet_toml: Path, *, say: Callable[[str], None] | None = None) -> "History":
    """The history in the catalog fleet.toml names, migrated (a push is a write: the config tools apply the
    catalog's migrations themselves, under the migration lock), with a legacy file beside fleet.toml
    imported once."""
    from facility.remote.history_import import LEGACY_NAME, LegacyHistoryError, import_legacy
    if not catalog_url:
        raise HistoryError(f"{fleet_toml}: no catalog: the push history lives in the facility catalog; set "
                           "catalog_url (the receivers' PostgreSQL URL, or an SQLite file) or store_dir")
    if "://" not in catalog_url or catalog_url.startswith("sqlite:///"):
        path = Path(catalog_url[len("sqlite://"):] if catalog_url.startswith("sqlite:///") else catalog_url)
        if not path.parent.is_dir():  # the receiver's store on another machine: do not make a stray one
            raise HistoryError(f"catalog {path}: its folder does not exist (set catalog_url in {fleet_toml})")
    try:
        h = History(history_catalog(catalog_url), Path(fleet_toml).parent / "remote-audit.jsonl")
    except CatalogError as exc:
        raise HistoryError(str(exc)) from None
    legacy = Path(fleet_toml).parent / LEGACY_NAME
    if legacy.is_file():
        try:
            import_legacy(h, legacy, say=say or (lambda _s: None))
        except (LegacyHistoryError, OSError) as exc:  # the push can still go on: devices report their versions
            (say or (lambda _s: None))(f"warning: {exc}")
        except BaseException:
            h.close()
            raise
    return h


class History:
    def __init__(self, catalog: Catalog, audit_file: Path) -> None:
        self.catalog, self.db = catalog, catalog.db
        self.audit_file = Path(audit_file)
        self.host = socket.gethostname()[:200]

    def close(self) -> None:
        self.catalog.close()

    # ------------------------------------------------------------------ audit
    def audit(self, event: str, **fields: Any) -> None:
        append_audit(self.audit_file, event, **fields)

    # ------------------------------------------------------------------ pushes
    def max_version(self) -> int:
        return int(self.db.query("SELECT COALESCE(MAX(version), 0) FROM config_pushes")[0][0])

    def reserve_push(self, *, signer: str, key_id: str, targets: dict[str, Any], fragment: str,
                     sign: Callable[[int], bytes], floor: int = 0, version: int | None = None) -> tuple[int, int, bytes]:
        """Allocate (push id, version) and record the push with the document ``sign(version)`` made, in one
        transaction under the push lock: version = one more than anything in the catalog and ``floor`` (what
        the devices reported), unless given. ``sign`` raising (the self-check) records nothing."""
        with self.db.transaction():
            self.db.lock_pushes()
            top_id, top_version = self.db.query("SELECT COALESCE(MAX(id), 0), COALESCE(MAX(version), 0) "
                                                "FROM config_pushes")[0]
            version = version or max(int(top_version), floor) + 1
            push_id = int(top_id) + 1
            document = sign(version)
            self.db.execute("INSERT INTO config_pushes (id, version, signer, key_id, targets, fragment, document, "
                            "pushed_at, state, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?)",
                            (push_id, version, signer, key_id, json.dumps(targets, sort_keys=True), fragment,
                             document.decode("utf-8"), time.time(), self.host))
        self.audit("push", push_id=push_id, version=version, signer=signer, key_id=key_id, targets=targets,
                   catalog=self.catalog.url)
        return push_id, version, document

    def start_push(self, *, version: int, signer: str, key_id: str, targets: dict[str, Any], fragment: str,
                   document: bytes) -> int:
        """Record an already signed push of a given version (tests, imports of a known document)."""
        return self.reserve_push(signer=signer, key_id=key_id, targets=targets, fragment=fragment,
                                 sign=lambda _v: document, version=version)[0]

    def finish_push(self, push_id: int, state: str, note: str = "") -> None:
        with self.db.transaction():
            self.db.execute("UPDATE config_pushes SET state = ?, note = ? WHERE id = ?", (state, note, push_id))
        self.audit("rollout_" + state, push_id=push_id, note=note)

    def result(self, push_id: int, device: str, version: int, state: str, reason: str = "") -> None:
        with self.db.transaction():
            self.db.execute("INSERT INTO config_results (push_id, device, version, state, reason, at) "
                            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (push_id, device) DO UPDATE SET "
                            "state = excluded.state, reason = excluded.reason, at = excluded.at",
                            (push_id, device, version, state, reason, time.time()))
        if state != "sent":
            self.audit("device_" + state, push_id=push_id, device=device, version=version, reason=reason)

    def unanswered(self) -> list[dict[str, Any]]:
        """Devices a push reached without a report yet (offline then): filled in when they report."""
        return [dict(zip(("push_id", "device", "version"), r)) for r in self.db.query(
            "SELECT push_id, device, version FROM config_results WHERE state IN ('sent', 'no_answer') "
            "ORDER BY push_id, device")]

    def running(self) -> list[dict[str, Any]]:
        return [dict(zip(PUSH_COLUMNS, r)) for r in self.db.query(
            f"SELECT {', '.join(PUSH_COLUMNS)} FROM config_pushes WHERE state IN ('running', 'aborting') ORDER BY id")]

    def request_abort(self) -> list[int]:
        with self.db.transaction():
            ids = [int(r[0]) for r in self.db.query("SELECT id FROM config_pushes WHERE state = 'running' "
                                                    "ORDER BY id")]
            for i in ids:
                self.db.execute("UPDATE config_pushes SET state = 'aborting' WHERE id = ? AND state = 'running'",
                                (i,))
        for i in ids:
            self.audit("abort_requested", push_id=i)
        return ids

    def abort_requested(self, push_id: int) -> bool:
        rows = self.db.query("SELECT state FROM config_pushes WHERE id = ?", (push_id,))
        return bool(rows) and rows[0][0] == "aborting"

    def pushes(self, limit: int = 50) -> list[dict[str, Any]]:
        out = []
        for r in self.db.query(f"SELECT {', '.join(PUSH_COLUMNS)} FROM config_pushes ORDER BY id DESC LIMIT ?",
                               (int(limit),)):
            d = dict(zip(PUSH_COLUMNS, r))
            d["targets"] = json.loads(d["targets"])
            d["results"] = [dict(zip(RESULT_COLUMNS[1:], x)) for x in self.db.query(
                "SELECT device, version, state, reason, at FROM config_results WHERE push_id = ? ORDER BY device",
                (d["id"],))]
            out.append(d)
        return out

    def fragment_of(self, version: int) -> str | None:
        rows = self.db.query("SELECT fragment FROM config_pushes WHERE version = ? ORDER BY id DESC LIMIT 1",
                             (version,))
        return rows[0][0] if rows else None
