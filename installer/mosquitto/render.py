"""Turn the shipped facility broker config into a loopback one for `labedge demo` and tests.

Only paths, the port and the process user change; every security and queue setting is the
shipped one, so what the demo and the auth tests run is what a facility installs.
"""
from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

RECEIVER_CN = "labedge-receiver"


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
                log_file: Path, bind: str = "127.0.0.1", crl: Path | None = None) -> str:
    """The shipped mosquitto.conf with loopback port and local paths (all absolute).

    ``crl`` defaults to ``crl.pem`` beside ``ca`` (where `labedge pki init` writes it)."""
    crl = Path(crl) if crl is not None else Path(ca).parent / "crl.pem"
    repl = {
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
                                log_file=dir / "mosquitto.log"), encoding="utf-8")
    return conf
