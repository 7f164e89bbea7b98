"""`labedge check`: every check `labedge run` makes at start, without starting anything.

One list of problems serves both: `run` refuses to start on a problem with ``stops_run`` (and
prints its message), while upload problems (certificate files, key permissions) let `run` start,
build packages and keep them queued, showing the same message in `status`. `check` prints them
all and exits non-zero, so an installer or a service unit can refuse a config before it runs.
"""
from __future__ import annotations

import argparse
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from agent.config import Config, ConfigError, UploadConfig, default_config_path, load_config, watch_folder_problem

#: `labedge check` exit codes (documented in README "labedge check").
EXIT_OK, EXIT_ONLINE_PROBLEM, EXIT_BAD_CONFIG = 0, 1, 2


@dataclass(frozen=True)
class CheckProblem:
    where: str             # the file or key the problem is about
    message: str           # the full sentence, exactly as `run` / `status` say it
    severity: str = "error"  # "error": check fails; "warning": printed, check still passes
    stops_run: bool = True   # True: `run` refuses to start; False: it starts and shows the problem
    online: bool = False     # found by --online (the broker), not by reading files


class KeyPermissions:
    """Who besides the owner can read a private key. POSIX reads the mode; Windows asks icacls."""

    def problem(self, key_file: Path) -> str | None:
        return self._windows(key_file) if sys.platform == "win32" else self._posix(key_file)

    @staticmethod
    def _posix(key_file: Path) -> str | None:
        try:
            mode = stat.S_IMODE(key_file.stat().st_mode)
        except OSError:
            return None  # missing/unreadable is reported by the certificate check
        if mode & 0o077:
            return (f"key_file {key_file} can be read by other users (mode {mode:04o}): "
                    f"run `chmod 600 {key_file}`")
        return None

    def _windows(self, key_file: Path) -> str | None:  # pragma: no cover - Windows only
        try:
            out = subprocess.run(["icacls", str(key_file)], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        return icacls_problem(key_file, out)


#: Windows groups that must never hold rights on a private key.
_BROAD_GROUPS = ("everyone", "builtin\\users", "nt authority\\authenticated users", "users")


def icacls_problem(key_file: Path, icacls_output: str) -> str | None:
    """The part of the Windows check that is plain text: who does `icacls` list with rights?"""
    broad = []
    for line in icacls_output.splitlines():
        entry = line.replace(str(key_file), "").strip()
        who = entry.split(":", 1)[0].strip().lower()
        if ":" in entry and who in _BROAD_GROUPS:
            broad.append(entry.split(":", 1)[0].strip())
    if broad:
        return (f"key_file {key_file} can be read by {', '.join(broad)}: make it owner-only "
                f"(icacls \"{key_file}\" /inheritance:r /grant:r \"%USERNAME%:F\")")
    return None


def upload_problems(cfg: Config, key_permissions: KeyPermissions | None = None) -> list[CheckProblem]:
    """The [upload] files: present, loadable, belonging together, key private, certificate usable."""
    u = cfg.upload
    if u is None:
        return []
    from agent.transport.enroll import certificate_status
    from wire.tls import TransportError, client_context

    out: list[CheckProblem] = []
    try:
        client_context(u.ca_file, u.cert_file, u.key_file)
    except TransportError as exc:  # the uploader reports exactly this, with the same prefix
        out.append(CheckProblem("upload", f"[upload] {exc}", stops_run=False))
        return out
    why = (key_permissions or KeyPermissions()).problem(u.key_file)
    if why:
        out.append(CheckProblem("upload.key_file", f"[upload] {why}", stops_run=False))
    cert = certificate_status(u.cert_file, cfg.device_id)
    if cert.get("warning"):
        soon = not cert.get("expired") and cert.get("cn") == cfg.device_id
        out.append(CheckProblem("upload.cert_file", cert["warning"], severity="warning" if soon else "error",
                                stops_run=False))
    return out


def broker_problems(u: UploadConfig) -> list[CheckProblem]:
    """One TLS handshake with the broker, outside MQTT, the way the uploader explains failures."""
    from wire.tls import TransportError, client_context, probe

    try:
        ctx = client_context(u.ca_file, u.cert_file, u.key_file)
    except TransportError:
        return []  # already reported by upload_problems
    why = probe(u.host, u.port, ctx, u.cert_file, u.ca_file)
    return [CheckProblem("upload.broker", why, stops_run=False, online=True)] if why else []


def _writable_dir_problem(key: str, folder: Path) -> CheckProblem | None:
    """The agent creates its folders; the nearest existing ancestor must let this user do so."""
    probe_dir = folder
    while not probe_dir.exists() and probe_dir.parent != probe_dir:
        probe_dir = probe_dir.parent
    if probe_dir.exists() and not probe_dir.is_dir():
        return CheckProblem(key, f"{key} {str(folder)!r}: {str(probe_dir)!r} is a file, not a folder")
    if not os.access(probe_dir, os.W_OK | os.X_OK):
        return CheckProblem(key, f"{key} {str(folder)!r}: this user cannot create or write it "
                                 f"(no write permission on {str(probe_dir)!r})")
    return None


def config_problems(cfg: Config, key_permissions: KeyPermissions | None = None) -> list[CheckProblem]:
    """Every offline check on a config that parsed and matched the schema."""
    out: list[CheckProblem] = []
    for i, inst in enumerate(cfg.instruments):
        for w in inst.watch:
            why = watch_folder_problem(w)
            if why:
                where = f"instruments[{i}] (id={inst.id!r}).watch"
                out.append(CheckProblem(where, f"{cfg.source}: {where}: {why}"))
    for key in ("state_dir", "spool_dir", "log_dir"):
        p = _writable_dir_problem(key, getattr(cfg, key))
        if p:
            out.append(CheckProblem(p.where, f"{cfg.source}: {p.message}"))
    out += upload_problems(cfg, key_permissions)
    from agent.remote.apply import trust_root_problem  # [remote] trust_root: readable, an Ed25519 root key
    why = trust_root_problem(cfg)
    if why:  # the agent runs; only pushed configs would be refused, so it does not stop `run`
        out.append(CheckProblem("remote.trust_root", f"{cfg.source}: {why}", stops_run=False))
    return out


def run_checks(config_path: Path | str, online: bool = False) -> list[CheckProblem]:
    """All the problems `run` would refuse or report for this config; empty when all is well."""
    try:
        cfg = load_config(config_path, check_watch_folders=False)
    except ConfigError as exc:
        return [CheckProblem(str(config_path), str(exc))]
    problems = config_problems(cfg)
    if online and cfg.upload is not None:
        problems += broker_problems(cfg.upload)
    return problems


def load_checked_config(config_path: Path | str, *, system: bool = False) -> Config:
    """What `run` loads: the config, refused with the first problem that stops it (ConfigError).
    ``system``: `run --system`, machine-wide folders (agent/machine.py)."""
    cfg = load_config(config_path, check_watch_folders=False, system=system)
    for p in config_problems(cfg):
        if p.stops_run and p.severity == "error":
            raise ConfigError(p.message)
    return cfg


def exit_code(problems: list[CheckProblem]) -> int:
    errors = [p for p in problems if p.severity == "error"]
    if any(not p.online for p in errors):
        return EXIT_BAD_CONFIG
    return EXIT_ONLINE_PROBLEM if errors else EXIT_OK


def _offline(path: Path | str) -> bool:
    try:
        return load_config(path, check_watch_folders=False).upload is None
    except ConfigError:
        return False


def cmd_check(args: argparse.Namespace) -> int:
    path = args.config or default_config_path()
    problems = run_checks(path, online=args.online)
    for p in problems:
        if p.severity == "warning":
            label = "warning"
        elif p.online:
            label = "broker problem"
        elif p.stops_run:
            label = "configuration error"
        else:
            label = "upload problem (run starts and keeps packages queued)"
        print(f"labedge: {label}: {p.message}", file=sys.stderr)
    rc = exit_code(problems)
    if rc == EXIT_OK:
        if _offline(path):  # no [upload]: there is no broker to contact, and none accepted us
            what = "(offline: no [upload] section, packages are kept in the queue)"
        else:
            what = "and the broker accepted this device" if args.online else "(broker not contacted; add --online)"
        print(f"labedge check: {path} is OK {what}")
    return rc


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="check a config as `run` would, without starting (exit 0 ok, 2 bad config)")
    p.add_argument("--config", "-c", type=Path, default=None,
                   help=f"config file (default: {default_config_path()})")
    p.add_argument("--online", action="store_true",
                   help="also connect to the broker over mTLS (exit 1 if it is unreachable or refuses us)")
    p.set_defaults(func=cmd_check)
