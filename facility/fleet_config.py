"""``fleet.toml``: what the administrator's tools (``labedge fleet ...``) connect with.

The administrator is an MQTT identity of its own (CN ``labedge-admin`` by default) that the broker
ACL lets read every device's status and write commands and configuration, and nothing a device has.
Relative paths are resolved against the file's folder.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any


from config.validation import BrokerAddress, ConfigError, read_toml, resolve_path, validate_against
from wire.tls import own_cert_summary


ADMIN_CN = "labedge-admin"
DEFAULT_DASHBOARD_PORT = 8780
DEFAULT_STATUS_INTERVAL = 60


@dataclass(frozen=True)
class DashboardConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_DASHBOARD_PORT
    token_file: Path | None = None


@dataclass(frozen=True)
class FleetConfig(BrokerAddress):
    source: Path
    broker: str
    ca_file: Path
    cert_file: Path
    key_file: Path
    client_id: str = ADMIN_CN
    topic_prefix: str = "rde"
    store_dir: Path | None = None
    catalog_url: str | None = None      # default: the receiver's, <store_dir>/.catalog.sqlite3
    signing_key: Path | None = None
    trust_root: Path | None = None
    ca_dir: Path | None = None          # fleetops: the CA's revoked.json names revoked devices
    status_interval: int = DEFAULT_STATUS_INTERVAL
    dashboard: DashboardConfig = DashboardConfig()


    @property
    def token_file(self) -> Path:
        return self.dashboard.token_file or self.source.parent / "dashboard.token"


def fleet_schema() -> dict[str, Any]:
    return json.loads(resources.files("config").joinpath("schema/fleet.v1.schema.json").read_text("utf-8"))


def load_fleet_config(path: Path | str) -> FleetConfig:
    path = Path(path)
    data = read_toml(path, "fleet config")
    return parse_fleet_config(data, source=path)


def parse_fleet_config(data: dict[str, Any], *, source: Path) -> FleetConfig:
    validate_against(fleet_schema(), data, source)
    base = source.parent.resolve()

    def resolve(p: str) -> Path:
        return resolve_path(p, base)

    kw: dict[str, Any] = {k: v for k, v in data.items() if k not in ("config_version", "dashboard")}
    for key in ("ca_file", "cert_file", "key_file", "store_dir", "signing_key", "trust_root", "ca_dir"):
        if key in kw:
            kw[key] = resolve(kw[key])
    for key in ("ca_file", "cert_file", "key_file"):
        if not kw[key].is_file():
            raise ConfigError(f"{source}: {key}: file {str(kw[key])!r} does not exist")
    url = kw.get("catalog_url")
    if url is not None and "://" not in url:
        kw["catalog_url"] = str(resolve(url))  # a plain path is an SQLite file
    elif url is not None and not url.startswith(("postgresql://", "postgres://", "sqlite:///")):
        raise ConfigError(f"{source}: catalog_url: {url!r} is neither a file path nor a postgresql:// URL")
    if "catalog_url" not in kw and "store_dir" in kw:
        from facility.catalog.writer import default_catalog_path
        kw["catalog_url"] = str(default_catalog_path(kw["store_dir"]))
    if "client_id" not in kw:
        cn, _, _ = own_cert_summary(kw["cert_file"])
        if cn == "?":
            raise ConfigError(f"{source}: cert_file {kw['cert_file']}: not a readable PEM certificate")
        kw["client_id"] = cn
    d = dict(data.get("dashboard", {}))
    if "token_file" in d:
        d["token_file"] = resolve(d["token_file"])
    return FleetConfig(source=source, dashboard=DashboardConfig(**d), **kw)
