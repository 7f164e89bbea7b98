"""The files `labedge service install` writes, rendered from templates shipped in installer/.

Templates carry ``@NAME@`` placeholders; rendering refuses a template with one left unfilled, so a
renamed placeholder fails at install (and in the tests), never as a unit that systemd half-reads.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from agent.machine import ENV_ROOT, SystemPaths

_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


class TemplateError(Exception):
    """A shipped template does not match what the installer fills in."""


@dataclass(frozen=True)
class ServiceSpec:
    """What a service manager needs to run the agent machine-wide."""

    command: tuple[str, ...]        # argv that runs `labedge run --system --config ...`
    paths: SystemPaths
    user: str = "labedge"           # the dedicated account (Linux); Windows runs as LocalSystem
    group: str = "labedge"
    system_root: str | None = None  # LABEDGE_SYSTEM_ROOT when set (tests, unusual installs)
    writable: tuple[Path, ...] = ()  # what the agent writes (the config may move the spool); default: paths

    @property
    def read_write_paths(self) -> tuple[Path, ...]:
        return outermost(self.writable or self.paths.writable_dirs())


def outermost(dirs: tuple[Path, ...] | list[Path]) -> tuple[Path, ...]:
    """The given folders without those inside another one of them, in order."""
    uniq = list(dict.fromkeys(dirs))
    return tuple(d for d in uniq if not any(o != d and o in d.parents for o in uniq))


def template(package: str, name: str) -> str:
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


def fill(text: str, values: dict[str, str], what: str) -> str:
    missing = sorted(set(_PLACEHOLDER.findall(text)) - set(values))
    if missing:
        raise TemplateError(f"{what}: no value for {', '.join('@' + m + '@' for m in missing)}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def systemd_quote(arg: str) -> str:
    """Quote one ExecStart argument the way systemd splits them (double quotes, \\ escapes);
    `%` would start a systemd specifier, `$` a variable."""
    if arg and not re.search(r'[\s"\'\\%$;]', arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$") + '"'


def systemd_unit(spec: ServiceSpec) -> str:
    p = spec.paths
    env = [f"Environment={systemd_quote(f'{ENV_ROOT}={spec.system_root}')}"] if spec.system_root else []
    env.append("Environment=PYTHONUNBUFFERED=1")
    return fill(template("installer.systemd", "labedge.service"), {
        "USER": spec.user, "GROUP": spec.group,
        "EXEC": " ".join(systemd_quote(a) for a in spec.command),
        "BASE_DIR": systemd_quote(str(p.base_dir)),
        "CONFIG_DIR": str(p.config_dir),
        "ENVIRONMENT": "\n".join(env),
        "READ_WRITE_PATHS": " ".join(systemd_quote(str(d)) for d in spec.read_write_paths),
    }, "installer/systemd/labedge.service")


def winsw_xml(spec: ServiceSpec) -> str:
    exe, *args = spec.command
    env = (f"<env name={quoteattr(ENV_ROOT)} value={quoteattr(spec.system_root)}/>" if spec.system_root else "")
    return fill(template("installer.windows", "labedge-service.xml"), {
        "EXECUTABLE": escape(exe),
        "ARGUMENTS": escape(" ".join(_windows_quote(a) for a in args)),
        "BASE_DIR": escape(str(spec.paths.base_dir)),
        "LOG_DIR": escape(str(spec.paths.log_dir)),
        "ENVIRONMENT": env,
    }, "installer/windows/labedge-service.xml")


def _windows_quote(arg: str) -> str:
    return f'"{arg}"' if not arg or re.search(r"\s", arg) else arg


def tray_desktop_entry(command: list[str]) -> str:
    """The XDG autostart entry that starts `labedge tray --system` when a user logs in."""
    def q(a: str) -> str:  # Desktop Entry Exec quoting
        return a if re.fullmatch(r"[A-Za-z0-9_./:=-]+", a) else '"' + re.sub(r'([\"`$\\])', r"\\\1", a) + '"'
    return fill(template("installer.desktop", "labedge-tray.desktop"),
                {"EXEC": " ".join(q(a) for a in command).replace("%", "%%")}, "installer/desktop/labedge-tray.desktop")


def unit_values(unit_text: str) -> dict[str, list[str]]:
    """``Key=value`` lines of a unit (all values per key), for tests and `service status`."""
    out: dict[str, list[str]] = {}
    for line in unit_text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def command_for(exe_prefix: list[str], config: Path) -> tuple[str, ...]:
    return (*exe_prefix, "run", "--system", "--config", str(config))
