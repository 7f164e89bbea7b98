"""`labedge receive --config receiver.toml`: the receiver's own small, versioned config."""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any


from config.validation import BrokerAddress, ConfigError, read_toml, resolve_path, validate_against
from wire.tls import own_cert_summary



@dataclass(frozen=True)
class ReceiverConfig(BrokerAddress):
    source: Path
    broker: str
    ca_file: Path
    cert_file: Path
    key_file: Path
    store_dir: Path
    client_id: str
    topic_prefix: str = "rde"
    share_group: str = "labedge"
    window: int = 16
    partial_expiry_seconds: float = 7 * 24 * 3600.0
    max_package_bytes: int = 1 << 40
    keepalive: int = 60
    session_expiry: int = 0
    reconnect_max: float = 30.0
    min_free_bytes: int = 256 * 1024 * 1024
    busy_retry_seconds: float = 30.0
    # what one device may make the receiver keep (security finding 3)
    max_files_per_package: int = 20_000
    max_partials_per_device: int = 16
    max_partial_bytes_per_device: int | None = None   # default: max_package_bytes
    stalled_partial_seconds: float = 900.0
    log_level: str = "INFO"
    log_file: Path | None = None
    #: an SQLite file or a postgresql:// URL; default: <store_dir>/.catalog.sqlite3 (docs/facility.md)
    catalog_url: str | None = None

    @property
    def catalog(self) -> str:
        if self.catalog_url:
            return self.catalog_url
        from facility.catalog.writer import default_catalog_path
        return str(default_catalog_path(self.store_dir))



def receiver_schema() -> dict[str, Any]:
    text = resources.files("config").joinpath("schema/receiver.v1.schema.json").read_text("utf-8")
    return json.loads(text)


def load_receiver_config(path: Path | str) -> ReceiverConfig:
    path = Path(path)
    data = read_toml(path, "receiver config")
    return parse_receiver_config(data, source=path)


def parse_receiver_config(data: dict[str, Any], *, source: Path) -> ReceiverConfig:
    validate_against(receiver_schema(), data, source)
    base = source.parent.resolve()

    def resolve(p: str) -> Path:
        return resolve_path(p, base)

    kw = {k: v for k, v in data.items() if k != "config_version"}
    for key in ("ca_file", "cert_file", "key_file", "store_dir", "log_file"):
        if key in kw:
            kw[key] = resolve(kw[key])
    for key in ("ca_file", "cert_file", "key_file"):
        if not kw[key].is_file():
            raise ConfigError(f"{source}: {key}: file {str(kw[key])!r} does not exist")
    url = kw.get("catalog_url")
    if url is not None and "://" not in url:
        kw["catalog_url"] = str(resolve(url))  # a plain path is an SQLite file
    if "client_id" not in kw:
        cn, _, _ = own_cert_summary(kw["cert_file"])
        if cn == "?":
            raise ConfigError(f"{source}: cert_file {kw['cert_file']}: not a readable PEM certificate")
        kw["client_id"] = cn
    return ReceiverConfig(source=source, **kw)
