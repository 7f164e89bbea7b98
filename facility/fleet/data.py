"""Gathering the fleet's facts: the broker's statuses plus the catalog's records -> DeviceLines."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from facility.catalog import Catalog, CatalogError, open_catalog
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
        return build_lines(statuses, self.catalog_devices(), default_interval=self.cfg.status_interval,
                           now=time.time() if now is None else now, revoked=self.revoked())

    def device_detail(self, device: str) -> dict[str, Any]:
        if self.catalog is None:
            return {"packages": [], "events": []}
        try:
            return {"packages": self.catalog.packages(device, limit=30), "events": self.catalog.events(device)}
        except Exception as exc:  # noqa: BLE001
            self.catalog_note = f"catalog unreadable: {exc}"
            return {"packages": [], "events": []}

    def close(self) -> None:
        if self.catalog is not None:
            self.catalog.close()
