"""Load and validate the agent's TOML configuration.

The schema in ``config/schema`` is the single source of what is allowed; this module turns
schema violations into one-line messages that name the key (and the instrument id), and
fills defaults from platformdirs.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import platformdirs

from config import config_schema
from config.validation import BrokerAddress, ConfigError, describe_error, resolve_path  # noqa: F401 - ConfigError and describe_error are part of this module's API

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

APP = "labedge"
GiB = 1024 ** 3
#: RDE requires a 56-character owner id; this all-zero id marks "owner not known" on unpaired data.
UNKNOWN_OWNER = "0" * 56

#: Files instruments and editors write while working; never data.
DEFAULT_EXCLUDES = ["*.tmp", "*.temp", "~$*", "*~", "*.swp", "*.bak", "*.part", "*.crdownload", ".~lock.*",
                    "Thumbs.db", "desktop.ini", ".DS_Store", "*.lock", "*.lck"]


@dataclass(frozen=True)
class UploadConfig(BrokerAddress):
    broker: str
    ca_file: Path
    cert_file: Path
    key_file: Path
    topic_prefix: str = "rde"
    chunk_size: int = 1024 * 1024
    window: int = 8
    rate_limit: int = 0
    keepalive: int = 30
    session_expiry: int = 7 * 24 * 3600
    ack_timeout: float = 30.0
    delete_delivered: bool = True
    parallel: int = 4
    reconnect_max: float = 60.0
    #: fleet status heartbeat (agent/fleet/status_publisher.py); also published on every change
    status_interval: int = 60
    renew_days: float = 30.0           # agent.fleet.renew: renew this long before the certificate expires



@dataclass(frozen=True)
class WebConfig:
    enabled: bool = True
    port: int = 8765


@dataclass(frozen=True)
class InstrumentConfig:
    id: str
    watch: tuple[Path, ...]
    translator: str = "auto"
    template: str = "general"
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    settle_seconds: float = 5.0
    polling: str = "auto"
    poll_seconds: float = 5.0
    group: str = "file"
    group_quiet_seconds: float = 10.0
    marker: str | None = None
    recursive: bool = True
    unpaired_policy: str = "send"      # agent.sheets: "hold" forever, or "send" unpaired after hold_seconds
    hold_seconds: float = 600.0        # wait this long for a sample sheet before the policy applies
    truncated_grace_seconds: float = 60.0   # "looks truncated": wait this long for the file to change
    empty_file_seconds: float = 300.0       # a 0-byte file waits this long for content, then ships marked empty
    open_file_wait_seconds: float = 600.0   # a file its writer holds open waits to be closed at most this long
    sheet_file_hours: float = 12.0     # a *.sheet.json pairs only files written after it, within this time
    rde_template: str | None = None    # an official NIMS template profile (translators.profiles); None = labedge's vocabulary
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def all_excludes(self) -> tuple[str, ...]:
        return tuple(DEFAULT_EXCLUDES) + self.exclude

    @property
    def sheet_template(self) -> str:
        """The sample sheet's template: the official template's invoice schema when ``rde_template``
        names one (RDE checks the invoice against it), else ``template``."""
        return self.rde_template or self.template


@dataclass(frozen=True)
class Config:
    source: Path
    device_id: str
    instruments: tuple[InstrumentConfig, ...]
    spool_dir: Path
    state_dir: Path
    log_dir: Path
    log_level: str = "INFO"
    default_owner_id: str = UNKNOWN_OWNER
    spool_max_bytes: int = 50 * GiB
    min_free_bytes: int = 1 * GiB
    rescan_seconds: float = 60.0
    translate_timeout_seconds: float = 300.0
    translate_memory_mb: int = 4096
    rde_templates_dir: Path | None = None  # the site's checkout of the official NIMS template repositories
    upload: UploadConfig | None = None
    web: WebConfig = WebConfig()
    mode: str = "user"                 # "system": machine-wide folders and a status file (agent/machine.py)
    status_file: Path | None = None    # readable by every local user; written by the agent in system mode
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def state_db(self) -> Path:
        return self.state_dir / "state.sqlite3"

    def instrument(self, instrument_id: str) -> InstrumentConfig:
        for inst in self.instruments:
            if inst.id == instrument_id:
                return inst
        raise KeyError(instrument_id)


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP, appauthor=False)) / "labedge.toml"


def config_key(source: Path) -> str:
    """A folder name unique to one config file: its name (letters kept) and a hash of its full path."""
    resolved = str(Path(source).resolve())
    stem = re.sub(r"[^\w.-]", "_", Path(source).stem)[:40] or "config"
    return f"{stem}-{hashlib.sha256(resolved.encode('utf-8', 'surrogatepass')).hexdigest()[:10]}"


def default_dirs(source: Path, *, adopt_legacy: bool = True) -> dict[str, Path]:
    """The platform's per-user folders, one set per config file: two configs never share a
    state folder or a spool (they would package each file twice and show each other's status).

    Agents before 0.2 kept one shared set (no per-config sub-folder). Its queue must not be stranded
    by an upgrade, so the first config that starts without folders of its own adopts that set, and
    records the claim there: every other config gets folders of its own."""
    key = config_key(source)
    dirs = {
        "spool_dir": Path(platformdirs.user_data_dir(APP, appauthor=False)) / key / "spool",
        "state_dir": Path(platformdirs.user_state_dir(APP, appauthor=False)) / key,
        "log_dir": Path(platformdirs.user_log_dir(APP, appauthor=False)) / key,
    }
    if adopt_legacy:
        legacy = legacy_dirs_for(source, dirs)
        if legacy is not None:
            return legacy
    return dirs


LEGACY_CLAIM = "claimed-by-config.txt"


def legacy_dirs_for(source: Path, new_dirs: dict[str, Path]) -> dict[str, Path] | None:
    """The pre-0.2 shared folders when they hold a state database and belong to ``source`` (or to
    nobody yet, and ``source`` has no folders of its own); else None."""
    state = Path(platformdirs.user_state_dir(APP, appauthor=False))
    if not (state / "state.sqlite3").is_file():
        return None
    me = str(Path(source).resolve())
    claim = state / LEGACY_CLAIM
    try:
        owner = claim.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        owner = None
    except OSError:
        return None
    if owner is None:
        if new_dirs["state_dir"].exists():
            return None
        try:
            fd = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another config claimed it a moment ago
            return legacy_dirs_for(source, new_dirs)
        except OSError:
            return None
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(me + "\n")
        owner = me
    if owner != me:
        return None
    return {"spool_dir": Path(platformdirs.user_data_dir(APP, appauthor=False)) / "spool",
            "state_dir": state, "log_dir": Path(platformdirs.user_log_dir(APP, appauthor=False))}


def load_config(path: Path | str, *, check_watch_folders: bool = True, system: bool = False,
                remote: bool = True) -> Config:
    """Read, validate and resolve a config file. Raises ConfigError with a precise message."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (create one with `labedge init --out {path}`)") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}{backslash_hint(path, exc)}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    if remote:  # the facility's signed layer (remote.toml beside the file), merged key by key
        from agent.remote.layers import effective_data
        data = effective_data(data, path, system=system)
    return parse_config(data, source=path, check_watch_folders=check_watch_folders, system=system)


_TOML_POS = re.compile(r"\(at line (\d+), column \d+\)")
_BASIC_STRING_WITH_BACKSLASH = re.compile(r'"((?:[^"\\]|\\.)*\\(?:[^"\\]|\\.)*)"')


def backslash_hint(path: Path, exc: Exception) -> str:
    """Windows paths in double quotes are the commonest TOML mistake: say how to write them.

    In a TOML "basic" string a backslash starts an escape, so "D:\\SmartLab\\Data" is an error
    ("\\S") or, worse, silently something else ("\\t" is a tab). Single quotes are literal.
    """
    text = str(exc)
    if "Unescaped '\\'" not in text and "Invalid hex value" not in text:
        return ""
    example = "D:\\SmartLab\\Data"
    m = _TOML_POS.search(text)
    if m:
        try:
            line = path.read_text(encoding="utf-8").splitlines()[int(m.group(1)) - 1]
        except (OSError, IndexError, UnicodeDecodeError):
            line = ""
        found = _BASIC_STRING_WITH_BACKSLASH.search(line)
        if found:
            example = found.group(1)
    return (f". A backslash inside double quotes starts an escape in TOML; write Windows paths in single "
            f"quotes, '{example}', or with forward slashes, \"{example.replace(chr(92), '/')}\"")


def watch_folder_problem(folder: Path) -> str | None:
    """Why the agent cannot watch ``folder`` (missing, not a folder, not readable), or None."""
    shown = str(folder)
    if not folder.is_dir():
        hint = ""
        if any(c in shown for c in "\t\n\r\b\f"):
            hint = (" (the path contains a tab or newline: in TOML \"\\t\" inside double quotes is a tab; "
                    "write Windows paths in single quotes, 'D:\\SmartLab\\Data', or as \"D:/SmartLab/Data\")")
        return f"folder {shown!r} does not exist or is not a folder{hint}"
    try:
        with os.scandir(folder) as it:
            next(it, None)
    except PermissionError:
        return f"folder {shown!r} cannot be read by this user (permission denied): give the agent's account read access"
    except OSError as exc:
        return f"folder {shown!r} cannot be listed ({exc.strerror or exc})"
    return None


def parse_config(data: dict[str, Any], *, source: Path, check_watch_folders: bool = True,
                 system: bool = False) -> Config:
    """``system`` (``labedge run --system``) is the same as ``mode = "system"`` in the file."""
    validate_config_dict(data, source=source)
    base = source.parent.resolve()

    def resolve(p: str) -> Path:
        return resolve_path(p, base)

    instruments = []
    seen: set[str] = set()
    for i, raw in enumerate(data["instruments"]):
        iid = raw["id"]
        where = f"instruments[{i}] (id={iid!r})"
        if iid in seen:
            raise ConfigError(f"{source}: {where}: duplicate instrument id {iid!r}")
        seen.add(iid)
        watch = tuple(resolve(w) for w in raw["watch"])
        if check_watch_folders:
            for w in watch:
                problem = watch_folder_problem(w)
                if problem:
                    raise ConfigError(f"{source}: {where}.watch: {problem}")
        if raw.get("group") == "folder" and not raw.get("recursive", True):
            raise ConfigError(f"{source}: {where}: group = \"folder\" needs recursive = true")
        known = {k: v for k, v in raw.items() if k in InstrumentConfig.__dataclass_fields__ and k != "extra"}
        known["watch"] = watch
        for key in ("include", "exclude"):
            if key in known:
                known[key] = tuple(known[key])
        instruments.append(InstrumentConfig(**known))

    upload = None
    if "upload" in data:
        u = dict(data["upload"])
        for key in ("ca_file", "cert_file", "key_file"):
            u[key] = resolve(u[key])
        upload = UploadConfig(**u)

    mode = "system" if system else data.get("mode", "user")
    status_file = None
    if mode == "system":
        from agent.machine import system_paths

        sp = system_paths()
        dirs = {"spool_dir": sp.spool_dir, "state_dir": sp.state_dir, "log_dir": sp.log_dir}
        status_file = sp.status_file
    else:
        dirs = default_dirs(source)  # per config file: two configs never share state or spool
    for key in dirs:
        if key in data:
            dirs[key] = resolve(data[key])
    if "rde_templates_dir" in data:
        dirs["rde_templates_dir"] = resolve(data["rde_templates_dir"])
    for inst in instruments:
        if inst.rde_template and "rde_templates_dir" not in data:
            raise ConfigError(f"{source}: instruments[{inst.id}].rde_template = {inst.rde_template!r} needs "
                              "rde_templates_dir (the folder holding the official NIMS template repositories)")
        if inst.rde_template and check_watch_folders:
            from translators.profiles import get

            folder = get(inst.rde_template).def_path(dirs["rde_templates_dir"]).parent
            if not folder.is_dir():  # said at start-up, not as a warning on every package
                raise ConfigError(f"{source}: instruments[{inst.id}].rde_template = {inst.rde_template!r}: "
                                  f"rde_templates_dir has no {folder} (the official template's tasksupport folder)")
    scalars = {k: data[k] for k in ("log_level", "default_owner_id", "spool_max_bytes", "min_free_bytes", "rescan_seconds",
                                     "translate_timeout_seconds", "translate_memory_mb") if k in data}
    return Config(source=source, device_id=data["device_id"], instruments=tuple(instruments), upload=upload,
                  web=WebConfig(**data.get("web", {})), mode=mode, status_file=status_file, raw=data,
                  **dirs, **scalars)


def rde_profile_of(inst: InstrumentConfig, cfg: Config) -> tuple[str, Path] | None:
    """(official template profile, the site's template folder) for an instrument, or None."""
    if not inst.rde_template or cfg.rde_templates_dir is None:
        return None
    return inst.rde_template, cfg.rde_templates_dir


def validate_config_dict(data: dict[str, Any], *, source: Path | str = "config") -> None:
    validator = jsonschema.Draft202012Validator(config_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        raise ConfigError(f"{source}: " + describe_error(errors[0], data))
