"""`labedge service install|uninstall|status`: the steps, independent of the OS's service manager.

Install never registers a service that would restart-loop: the config is staged beside its final
place as a machine-wide copy and `labedge check` must accept it, first as the installing
administrator (before anything changes) and then as the service account (which must be able to
read the watch folders and the key). Only then is it moved into place and the service registered.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from agent.config import ConfigError, load_config
from agent.machine import ENV_ROOT, SystemPaths, prepare_service_dirs, system_paths
from agent.permissions import Permissions, PosixPermissions, WindowsAcl
from agent.selfexec import self_command
from agent.service.autostart import Autostart
from agent.service.managers import CommandResult, ServiceManager, ServiceState
from agent.service.templates import ServiceSpec, command_for

MODE_LINE = 'mode = "system"   # added by `labedge service install`: machine-wide folders\n'
_MODE_KEY = re.compile(r'^\s*mode\s*=\s*["\'](\w+)["\']', re.MULTILINE)

#: ``checker(config, user)``: run `labedge check --config config` (as ``user`` when given).
Checker = Callable[[Path, "str | None"], CommandResult]


class InstallRefused(Exception):
    """The service was not installed; the message says why (usually `labedge check`'s words)."""


@dataclass
class InstallOptions:
    config: Path
    user: str = "labedge"       # the service account (Linux); Windows runs the service as LocalSystem
    tray: bool = False          # also start the tray for every user who logs in
    command: list[str] = field(default_factory=self_command)  # how to run labedge (frozen or venv)


def check_config(config: Path, user: str | None) -> CommandResult:
    """`labedge check --config` in a child process, as ``user`` when we are root (POSIX)."""
    extra: dict = {}
    if user is not None and os.name == "posix" and os.geteuid() == 0 and user != "root":
        import pwd

        pw = pwd.getpwnam(user)

        def drop() -> None:
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
        extra["preexec_fn"] = drop
    try:
        res = subprocess.run([*self_command(), "check", "--config", str(config)], capture_output=True, text=True,
                             timeout=120, cwd=str(config.parent), **extra)
    except (OSError, subprocess.SubprocessError) as exc:
        return CommandResult(126, f"cannot run `labedge check`{' as ' + user if user else ''}: {exc}")
    return CommandResult(res.returncode, (res.stderr + res.stdout).strip())


def machine_wide_text(text: str, source: Path) -> str:
    """The config as the service reads it: `mode = "system"` (added at the top if absent)."""
    m = _MODE_KEY.search(text.split("\n[", 1)[0])  # only a top-level key counts
    if m is None:
        return MODE_LINE + text
    if m.group(1) != "system":
        raise InstallRefused(f"{source}: mode = {m.group(1)!r}: a service needs mode = \"system\" "
                             "(or remove the key; install adds it)")
    return text


def permissions_for(owner: str | None) -> Permissions:
    return WindowsAcl() if sys.platform == "win32" else PosixPermissions(owner)


def install(opts: InstallOptions, manager: ServiceManager, autostart: Autostart | None = None, *,
            checker: Checker = check_config, perms: Callable[[str | None], Permissions] = permissions_for) -> list[str]:
    paths = system_paths()
    try:
        text = opts.config.read_text(encoding="utf-8")
    except OSError as exc:
        raise InstallRefused(f"{opts.config}: cannot read the config: {exc.strerror}") from None
    text = machine_wide_text(text, opts.config)
    perms(None).readable_dir(paths.config_dir)  # admin-owned; the service and the tray read it
    staged = paths.config_dir / ".labedge.toml.checking"
    staged.write_text(text, encoding="utf-8")
    try:
        _refuse_unless_ok(checker(staged, None), staged, opts.config, "")
        manager.ensure_account(opts.user)
        cfg = load_config(staged, check_watch_folders=False)
        keys = (cfg.upload.key_file,) if cfg.upload is not None else ()
        warnings = prepare_service_dirs(cfg, perms(opts.user), key_files=keys, installing=True)
        _refuse_unless_ok(checker(staged, opts.user), staged, opts.config, f" as the service account {opts.user!r}")
        os.replace(staged, paths.config_file)
        perms(None).readable_file(paths.config_file)
    finally:
        staged.unlink(missing_ok=True)
    # the config may put the spool (or state, logs) on another disk: the unit must let the agent write there
    writable = (paths.base_dir, cfg.state_dir, cfg.spool_dir, cfg.log_dir)
    spec = ServiceSpec(command=command_for(opts.command, paths.config_file), paths=paths, user=opts.user,
                       group=_group_of(opts.user), system_root=os.environ.get(ENV_ROOT), writable=writable)
    manager.install(spec)
    done = [f"installed the labedge service: config {paths.config_file}, state {paths.state_dir}, "
            f"spool {paths.spool_dir}, logs {paths.log_dir}", *warnings]
    if opts.tray and autostart is not None:
        done.append(autostart.install([*opts.command, "tray", "--system"]))
    return done


def _refuse_unless_ok(res: CommandResult, staged: Path, source: Path, who: str) -> None:
    if res.returncode != 0:
        words = res.output.replace(str(staged), str(source)) or f"exit code {res.returncode}"
        raise InstallRefused(f"`labedge check` refused {source}{who}; nothing was installed:\n{words}")


def _group_of(user: str) -> str:
    if os.name != "posix":
        return user
    import grp
    import pwd

    try:
        return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
    except KeyError:
        return user


def uninstall(manager: ServiceManager, autostart: Autostart | None = None, *, purge: bool = False) -> list[str]:
    paths = system_paths()
    manager.uninstall()
    done = ["removed the labedge service"]
    if autostart is not None:
        gone = autostart.uninstall()
        if gone:
            done.append(gone)
    if purge:
        for d in (paths.state_dir, paths.spool_dir, paths.log_dir):
            shutil.rmtree(d, ignore_errors=True)
        paths.status_file.unlink(missing_ok=True)
        done.append(f"removed {paths.state_dir}, {paths.spool_dir} and {paths.log_dir} (--purge); "
                    f"the config in {paths.config_dir} stays")
    else:
        waiting = undelivered(paths)
        done.append(f"kept {paths.state_dir}, {paths.spool_dir}, {paths.log_dir} and the config"
                    + (f": {waiting} package(s) not yet delivered stay in the spool and go out when the "
                       "service is installed again" if waiting else "")
                    + "; `labedge service uninstall --purge` removes state, spool and logs")
    return done


def undelivered(paths: SystemPaths) -> int:
    db = paths.state_dir / "state.sqlite3"
    if not db.exists():
        return 0
    from agent.state.store import StateStore

    try:
        store = StateStore(db, readonly=True)
    except Exception:  # noqa: BLE001 - a broken DB must not stop an uninstall
        return 0
    try:
        counts = store.counts()
        return counts.get("queued", 0) + counts.get("uploading", 0) + counts.get("failed", 0)
    except Exception:  # noqa: BLE001 - a DB without tables yet, or damaged: an uninstall still goes on
        return 0
    finally:
        store.close()


def status_words(manager: ServiceManager) -> tuple[ServiceState, str]:
    """`service status`: the manager's view, and `labedge status` beside it (from the status file)."""
    from agent.status import format_status
    from agent.status_file import StatusFileError, read_status_file

    state = manager.state()
    try:
        agent = format_status(read_status_file(system_paths().status_file))
    except StatusFileError as exc:
        agent = f"labedge status: {exc}"
    except ConfigError as exc:
        agent = f"labedge status: {exc}"
    return state, f"service: {state.words()}\n{agent}"
