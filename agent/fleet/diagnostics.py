"""A diagnostics bundle: what an administrator needs to see about a PC, as a package of kind `diagnostics`.

It travels through the normal upload path (queued, resumable, verified and stored by the receiver)
and holds, under ``data/raw/diagnostics/``: recent log lines, the status, the config with secrets
removed, versions, disk and queue. Secrets never go in: config values whose key names a key,
secret, password, passphrase or token are replaced, and every text is scrubbed of PEM private
keys, the local page's token and the contents of the device's key files.
"""
from __future__ import annotations

import json
import platform
import re
import secrets
import shutil
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from agent import __version__
from agent.config import Config
from agent.measurement import Measurement, SourceFile
from agent.package.builder import BuildContext, BuiltPackage, Spool, build_package
from agent.pairing import MINIMAL_SCHEMA, Pairing, minimal_invoice
from agent.state.store import StateStore

KIND = "diagnostics"
LOG_LINES = 1000
REMOVED = "<removed>"
_SECRET_KEY = re.compile(r"(key|secret|password|passphrase|token|credential)", re.I)
_PEM_PRIVATE = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S)


def redact_config(value: Any, key: str = "") -> Any:
    """The config as data, with every value under a secret-looking key replaced."""
    if key and _SECRET_KEY.search(key):
        return REMOVED
    if isinstance(value, dict):
        return {k: redact_config(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_config(v) for v in value]
    return value


def _secret_strings(cfg: Config) -> list[str]:
    """Exact strings that must never leave the PC: the page token and the device's key material."""
    out: list[str] = []
    token = cfg.state_dir / "web-token"
    candidates = [token]
    if cfg.upload is not None:
        k = Path(cfg.upload.key_file)
        candidates += [k, k.with_name(k.name + ".new"), k.with_name(k.name + ".old")]
    for p in candidates:
        try:
            text = p.read_text(encoding="ascii", errors="ignore").strip()
        except OSError:
            continue
        if p == token and text:
            out.append(text)
        out += [ln.strip() for ln in text.splitlines() if len(ln.strip()) >= 16 and "-----" not in ln]
    return out


def scrub(text: str, secret_strings: list[str]) -> str:
    text = _PEM_PRIVATE.sub("[private key removed]", text)
    for s in secret_strings:
        text = text.replace(s, REMOVED)
    return text


def _tail(path: Path, n: int) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "".join(deque(fh, maxlen=n))
    except OSError as exc:
        return f"(log {path} unreadable: {exc.strerror or exc})\n"


def _disk(cfg: Config) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, p in (("spool_dir", cfg.spool_dir), ("state_dir", cfg.state_dir), ("log_dir", cfg.log_dir)):
        try:
            u = shutil.disk_usage(p)
            out[name] = {"path": str(p), "total_bytes": u.total, "used_bytes": u.used, "free_bytes": u.free}
        except OSError as exc:
            out[name] = {"path": str(p), "error": exc.strerror or str(exc)}
    return out


def _versions() -> dict[str, Any]:
    out: dict[str, Any] = {"labedge": __version__, "python": sys.version.split()[0],
                           "platform": platform.platform(), "machine": platform.machine()}
    try:
        from translators.registry import load_registry  # type: ignore[attr-defined]
        out["translators"] = {t.name: getattr(t, "version", None) for t in load_registry().translators}
    except Exception as exc:  # noqa: BLE001 - versions are a courtesy; the bundle must still go out
        out["translators"] = f"not listed: {type(exc).__name__}"
    return out


def collect(cfg: Config, store: StateStore, cmd_id: str) -> dict[str, str]:
    """file name -> text of every file in the bundle (already scrubbed)."""
    from agent.status import build_status
    secrets_ = _secret_strings(cfg)
    packages = [{"id": p.id, "kind": p.kind, "state": p.state, "bytes": p.bytes, "attempts": p.attempts,
                 "error": p.last_error} for p in store.list_packages(limit=100)]
    docs: dict[str, Any] = {
        "status.json": build_status(cfg),
        "config.json": redact_config(cfg.raw),
        "versions.json": _versions(),
        "disk.json": _disk(cfg),
        "queue.json": {"counts": store.counts(), "oldest_waiting_created": store.oldest_queued_created(),
                       "recent_packages": packages},
        "about.json": {"device_id": cfg.device_id, "command_id": cmd_id, "made_at": time.time(),
                       "note": "labedge diagnostics bundle; secrets removed on the PC"},
    }
    files = {name: scrub(json.dumps(doc, indent=1, ensure_ascii=False, default=str), secrets_) + "\n"
             for name, doc in docs.items()}
    files["log-tail.txt"] = scrub(_tail(cfg.log_dir / "labedge.log", LOG_LINES), secrets_)
    return files


def build_diagnostics(cfg: Config, store: StateStore, spool: Spool, cmd_id: str) -> BuiltPackage:
    """Build and queue the bundle; returns the package (its id goes into the command's result)."""
    files = collect(cfg, store, cmd_id)
    spool.ensure()
    staging = spool.tmp / f"diag-{secrets.token_hex(8)}"  # cleared at start-up if we crash mid-way
    staging.mkdir(parents=True)
    try:
        sources = []
        for name, text in files.items():
            p = staging / name
            p.write_text(text, encoding="utf-8")
            st = p.stat()
            sources.append(SourceFile(p, f"diagnostics/{name}", st.st_size, st.st_mtime_ns))
        m = Measurement(instrument_id=KIND, key=f"diagnostics-{cmd_id}", files=sources, settled_at=time.time(),
                        watch_root=staging)
        inv = minimal_invoice(m, cfg.default_owner_id)
        inv["basic"]["dataName"] = f"diagnostics of {cfg.device_id}"
        inv["basic"]["description"] = f"labedge: diagnostics bundle for remote command {cmd_id}"
        pairing = Pairing(KIND, inv, MINIMAL_SCHEMA, source=KIND, details={"command_id": cmd_id})
        built = build_package(spool, m, pairing, BuildContext(cfg.device_id), translator=None, kind=KIND)
        store.add_package(package_id=built.id, instrument_id=KIND, path=str(built.path), nbytes=built.nbytes,
                          files=[], kind=KIND, translation=built.translation, pairing=built.pairing)
        return built
    finally:
        shutil.rmtree(staging, ignore_errors=True)
