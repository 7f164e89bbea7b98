"""Turn the shipped facility broker config into a loopback one for `labedge demo` and tests.

Only paths, the port and the process user change; every security and queue setting is the
shipped one, so what the demo and the auth tests run is what a facility installs.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

RECEIVER_CN = "labedge-receiver"
GUARD_SOURCE = "plugin/labedge_guard.c"


class PluginBuildError(RuntimeError):
    """The labedge_guard plugin could not be compiled (no C compiler or no mosquitto-dev headers)."""


def build_guard_plugin(cache_dir: Path | None = None) -> Path:
    """Compile plugin/labedge_guard.c once per source version; returns the .so path.

    The tests and `labedge demo` load the very plugin a facility builds (see README.md in this folder).
    """
    src = resources.files("installer.mosquitto").joinpath(GUARD_SOURCE).read_bytes()
    digest = hashlib.sha256(src).hexdigest()[:16]
    cache = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / f"labedge-plugin-{os.getuid()}"
    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    if hasattr(os, "geteuid") and cache.stat().st_uid != os.geteuid():  # a .so planted by another account
        raise PluginBuildError(f"{cache} belongs to another user; refusing to load a plugin from it")
    out = cache / f"labedge_guard-{digest}.so"
    if out.exists():
        return out
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise PluginBuildError("no C compiler (cc) to build the mosquitto labedge_guard plugin: apt-get install gcc")
    c_file = cache / f"labedge_guard-{digest}.c"
    c_file.write_bytes(src)
    tmp = out.with_suffix(".tmp")
    res = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(tmp), str(c_file)], capture_output=True, text=True)
    if res.returncode != 0:
        raise PluginBuildError("cannot build the mosquitto labedge_guard plugin (apt-get install mosquitto-dev?): "
                               + res.stderr.strip()[-500:])
    os.replace(tmp, out)
    return out


def shipped_conf() -> str:
    return resources.files("installer.mosquitto").joinpath("mosquitto.conf").read_text(encoding="utf-8")


def shipped_acl() -> str:
    return resources.files("installer.mosquitto").joinpath("labedge.acl").read_text(encoding="utf-8")


def render_acl(receivers: list[str] | None = None) -> str:
    """The shipped ACL, with its receiver block repeated for each receiver CN given."""
    text = shipped_acl()
    if not receivers or receivers == [RECEIVER_CN]:
        return text
    head, sep, block = text.partition(f"user {RECEIVER_CN}\n")
    if not sep:
        raise ValueError(f"labedge.acl has no 'user {RECEIVER_CN}' block")
    return head + "".join(f"user {cn}\n" + block for cn in receivers)


def render_conf(*, port: int, ca: Path, cert: Path, key: Path, acl: Path, data_dir: Path,
                log_file: Path, bind: str = "127.0.0.1", plugin: Path | None = None,
                receivers: list[str] | None = None, crl: Path | None = None) -> str:
    """The shipped mosquitto.conf with loopback port and local paths (all absolute).

    ``crl`` defaults to ``crl.pem`` beside ``ca`` (where `labedge pki init` writes it)."""
    crl = Path(crl) if crl is not None else Path(ca).parent / "crl.pem"
    repl = {
        "plugin": str(Path(plugin).resolve()) if plugin else "/usr/lib/labedge/labedge_guard.so",
        "plugin_opt_share_users": ",".join(receivers or [RECEIVER_CN]),
        "crlfile": str(crl.resolve()),
        "listener": f"{port} {bind}",
        "cafile": str(Path(ca).resolve()),
        "certfile": str(Path(cert).resolve()),
        "keyfile": str(Path(key).resolve()),
        "acl_file": str(Path(acl).resolve()),
        "persistence_location": str(Path(data_dir).resolve()) + os.sep,
        "log_dest": f"file {Path(log_file).resolve()}",
    }
    out = []
    for line in shipped_conf().splitlines():
        word = line.split(" ", 1)[0]
        if word == "user":
            # Run as whoever starts it: as root in a container, dropping to 'mosquitto' would make the
            # owner-only test keys unreadable (exactly the pitfall README.md warns about).
            if sys.platform != "win32" and hasattr(os, "geteuid") and os.geteuid() == 0:
                line = "user root"
            else:
                continue
        elif word in repl:
            line = f"{word} {repl[word]}"
        out.append(line)
    return "\n".join(out) + "\n"


def write_broker_files(dir: Path, *, port: int, ca: Path, cert: Path, key: Path,
                       receivers: list[str] | None = None) -> Path:
    """Write mosquitto.conf + labedge.acl (+ data dir, log path) under ``dir``; returns the conf path."""
    dir = Path(dir)
    (dir / "data").mkdir(parents=True, exist_ok=True)
    acl = dir / "labedge.acl"
    acl.write_text(render_acl(receivers), encoding="utf-8")
    crl = Path(ca).parent / "crl.pem"
    if not crl.is_file():  # mosquitto would refuse to start
        raise FileNotFoundError(f"{crl}: the broker's CRL is missing (write one with `labedge pki crl --ca DIR`)")
    conf = dir / "mosquitto.conf"
    conf.write_text(render_conf(port=port, ca=ca, cert=cert, key=key, acl=acl, data_dir=dir / "data",
                                log_file=dir / "mosquitto.log", plugin=build_guard_plugin(),
                                receivers=receivers), encoding="utf-8")
    return conf
