"""Gathering the fleet's facts: the broker's statuses plus the catalog's records -> DeviceLines."""
from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any, Callable

from facility.catalog import Catalog, CatalogError, open_catalog
from facility.fleet import pushes
from facility.fleet.admin_link import Statuses
from facility.fleet.view import DeviceLine, build_lines
from facility.fleet_config import FleetConfig

log = logging.getLogger(__name__)


def open_fleet_catalog(cfg: FleetConfig) -> tuple[Catalog | None, str | None]:
    """(catalog, None) or (None, why not) — the view works from the broker alone, and says so."""
    url = cfg.catalog_url
    if not url:
        return None, "no catalog configured (set catalog_url or store_dir in fleet.toml): stale devices " \
                     "that left no retained status cannot be shown"
    if "://" not in url and not Path(url).exists():
        return None, f"no catalog at {url} yet (the receiver creates it when it stores or hears something)"
    try:
        return open_catalog(url, readonly=True), None
    except CatalogError as exc:
        return None, str(exc)


class FleetData:
    def __init__(self, cfg: FleetConfig) -> None:
        self.cfg = cfg
        self.catalog, self.catalog_note = open_fleet_catalog(cfg)

    def catalog_devices(self) -> list[dict[str, Any]]:
        if self.catalog is None:
            self.catalog, self.catalog_note = open_fleet_catalog(self.cfg)
            if self.catalog is None:
                return []
        try:
            return self.catalog.devices()
        except Exception as exc:  # noqa: BLE001 - a catalog that went away: say so, show the broker's view
            self.catalog_note = f"catalog unreadable: {exc}"
            self.catalog.close()
            self.catalog = None
            return []

    def revoked(self) -> set[str]:
        """Devices with a revoked certificate (fleet.toml ``ca_dir``): their line says so."""
        if self.cfg.ca_dir is None:
            return set()
        from facility.revocation import revoked_names
        from wire.identity import PKIError
        try:
            return revoked_names(self.cfg.ca_dir)
        except PKIError as exc:
            self.catalog_note = str(exc)
            return set()

    def lines(self, statuses: Statuses, now: float | None = None) -> list[DeviceLine]:
        devices = self.catalog_devices()
        return build_lines(statuses, devices, default_interval=self.cfg.status_interval,
                           now=time.time() if now is None else now, revoked=self.revoked(),
                           pushes=self._history(pushes.last_results, {})[0])

    def _history(self, read: Callable[..., Any], empty: Any, *args: Any) -> tuple[Any, dict[str, Any] | None]:
        """(what ``read(db, *args)`` gives, None), or (``empty``, why there is no push history to read):
        a catalog without the history, or with a newer one, still shows every device."""
        if self.catalog is None:
            return empty, None  # catalog_note already says why
        try:
            note = pushes.availability(self.catalog.db)
            return (empty, note) if note else (read(self.catalog.db, *args), None)
        except Exception as exc:  # noqa: BLE001 - a history we cannot read must not take the device list down
            log.warning("push history unreadable: %s", exc)
            with contextlib.suppress(Exception):  # PostgreSQL: end the failed transaction, keep the connection
                self.catalog.db.conn.rollback()
            return empty, {"code": "unreadable", "value": str(exc)[:300],
                           "text": f"the push history cannot be read: {str(exc)[:300]}"}

    def config_view(self, statuses: Statuses) -> dict[str, Any]:
        """The recent pushes and each device's result in them (the dashboard's Configuration view)."""
        docs = self.docs(statuses)
        got, note = self._history(pushes.recent, [], docs)
        if self.catalog is None:
            note = {"code": "no_catalog", "value": self.catalog_note or "", "text": self.catalog_note or ""}
        return {"history_note": note, "pushes": got, "limit": pushes.MAX_PUSHES}

    def docs(self, statuses: Statuses) -> dict[str, dict[str, Any]]:
        """device -> its newest status document (the broker's, else the catalog's)."""
        docs = {c["device"]: c.get("status") or {} for c in self.catalog_devices()}
        docs.update({d: doc for d, (doc, _rx) in statuses.items() if doc and doc.get("online")})
        return docs

    def device_detail(self, device: str, doc: dict[str, Any] | None = None) -> dict[str, Any]:
        empty: dict[str, Any] = {"packages": [], "events": [], "config_pushes": [], "history_note": None}
        if self.catalog is None:
            return empty
        try:
            detail = {"packages": self.catalog.packages(device, limit=30), "events": self.catalog.events(device)}
        except Exception as exc:  # noqa: BLE001
            self.catalog_note = f"catalog unreadable: {exc}"
            return empty
        groups = [g for g in ((doc or {}).get("config") or {}).get("groups") or [] if isinstance(g, str)]
        detail["config_pushes"], detail["history_note"] = self._history(pushes.device_pushes, [], device, groups, doc)
        return detail

    def close(self) -> None:
        if self.catalog is not None:
            self.catalog.close()
