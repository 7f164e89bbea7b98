"""The commented starter config written by `labedge init`, never one that `run` would refuse."""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

STARTER = '''\
# labedge configuration. Every key is checked against config/schema/config.v1.schema.json;
# an unknown or misspelt key is an error that names it. Paths may be relative to this file.
config_version = 1

# Must equal the CN of this PC's device certificate (see `labedge enroll`).
device_id = {device_id}

# Where packages wait for upload, the state database and the logs. Defaults are the
# platform's per-user folders, one set per config file; uncomment to choose your own.
# spool_dir = {spool_dir}
# state_dir = {state_dir}
# log_dir = {log_dir}

# Intake stops (nothing is dropped) when waiting packages reach this size, or when the
# spool's disk has less than min_free_bytes free. It resumes by itself.
spool_max_bytes = 53687091200   # 50 GiB
min_free_bytes = 1073741824     # 1 GiB
rescan_seconds = 60             # full rescan of watched folders (events get lost on SMB/Windows)

# Remove this whole section to run offline: packages are built and kept in the queue.
# [upload]
# broker = "mqtts://broker.example.org:8883"
# ca_file = "ca.pem"
# cert_file = "{device_name}.pem"
# key_file = "{device_name}.key"

[web]
port = 8765                     # the local page, on 127.0.0.1 only

[[instruments]]
id = {instrument_id}
translator = "auto"             # or a name from `labedge translators`
template = "general"            # sample-sheet template (config/templates)
watch = [{watch}]
include = ["*"]                 # e.g. ["*.ras", "*.rasx"]
exclude = []                    # temp files (*.tmp, ~$*, *.part, ...) are always ignored
settle_seconds = 5              # a file is taken once size and mtime stay unchanged this long
group = "file"                  # "file", "stem" (image + .txt sidecar) or "folder"
# group_quiet_seconds = 10      # stem/folder: a group is complete after this quiet period
# marker = "*.done"             # folder: ...or as soon as a file matching this appears
polling = "auto"                # "auto" polls network shares, "always", or "never"
# A measurement with no sample sheet waits as "needs a sheet" (see the local page) for hold_seconds;
# then unpaired_policy "send" sends it with a minimal invoice marked unpaired, "hold" keeps waiting.
unpaired_policy = "send"
hold_seconds = 600
'''


def _toml_str(value: str) -> str:
    """A TOML basic string: JSON's escapes are all valid TOML escapes (json never writes "\\/")."""
    return json.dumps(value, ensure_ascii=False)


def write_starter(out: Path, *, device_id: str, instrument_id: str, watch: Path | None) -> str:
    """Render, check exactly as `run` would, and only then write; returns what to tell the user.

    A default watch folder (~/InstrumentData) is created; a folder the user named must exist,
    since creating a mistyped path would hide the typo.
    """
    from agent.check import config_problems
    from agent.config import ConfigError, default_dirs, parse_config

    # only a valid id goes into the comment lines; an invalid one is refused by the schema below
    device_name = device_id if re.fullmatch(r"[A-Za-z0-9._-]{1,64}", device_id) else "device"
    folder = Path(watch) if watch is not None else Path.home() / "InstrumentData"
    text = STARTER.format(
        device_id=_toml_str(device_id), instrument_id=_toml_str(instrument_id), device_name=device_name,
        watch=_toml_str(str(folder).replace("\\", "/")),
        **{k: _toml_str(v.as_posix()) for k, v in default_dirs(out, adopt_legacy=False).items()})
    cfg = parse_config(tomllib.loads(text), source=out, check_watch_folders=False)  # schema: names the key
    created = ""
    if watch is None and not folder.exists():
        folder.mkdir(parents=True, exist_ok=True)
        created = f"created the watch folder {folder}; "
    refused = [p for p in config_problems(cfg) if p.stops_run and p.severity == "error"]
    if refused:
        raise ConfigError(refused[0].message.replace(f"{out}: ", "", 1) + " (nothing written)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    # a folder the user named is already the one to watch: only the default one needs editing
    edit = "edit the [[instruments]] watch folder, then " if watch is None else f"it watches {folder}; "
    return (f"wrote {out}; {created}{edit}check it with: "
            f"labedge check --config {out}, and run: labedge run --config {out}")
