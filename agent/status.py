"""`labedge status`: the queue and health, read from the state DB (works with the agent stopped)."""
from __future__ import annotations

import time
from typing import Any

from agent.config import Config
from agent.intake import human
from agent.state.store import StateStore
from agent.summary import summarize

HEARTBEAT_STALE = 10.0


def build_status(cfg: Config) -> dict[str, Any]:
    out: dict[str, Any] = {"device_id": cfg.device_id, "config": str(cfg.source),
                           "state_db": str(cfg.state_db), "spool_dir": str(cfg.spool_dir),
                           "offline": cfg.upload is None}
    if cfg.upload is not None:  # read the file directly: the warning must show with the agent stopped
        from agent.transport.enroll import certificate_status
        out["certificate"] = certificate_status(cfg.upload.cert_file, cfg.device_id)
    if not cfg.state_db.exists():
        out.update(agent={"running": False, "note": "the agent has never run with this config"},
                   packages={"queued": 0, "uploading": 0, "delivered": 0, "failed": 0},
                   oldest_queued_age_seconds=None, spool_bytes=0, spool_max_bytes=cfg.spool_max_bytes,
                   intake={"paused": False, "reason": None}, problems=[], progress=[], failed=[])
        out["summary"] = summarize(out).as_dict()
        return out
    store = StateStore(cfg.state_db, readonly=True)
    try:
        health = store.health()
        counts = store.counts()
        oldest = store.oldest_queued_created()
        failed = [{"id": p.id, "instrument_id": p.instrument_id, "error": p.last_error, "attempts": p.attempts}
                  for p in store.list_packages("failed", limit=20)]
        spool_bytes = store.spool_bytes()
        control = store.control()
        from agent.sheets.sheetdb import sheets_status  # held measurements, active sheets
        sheets = sheets_status(store, [i.id for i in cfg.instruments],
                               {i.id: i.hold_seconds for i in cfg.instruments if i.unpaired_policy == "send"})
    finally:
        store.close()
    beat = health.get("heartbeat", {}).get("value")
    snap = health.get("agent", {}).get("value", {"facts": {}, "problems": {}, "progress": {}})
    facts = snap.get("facts", {})
    running = beat is not None and time.time() - beat < HEARTBEAT_STALE
    paused = facts.get("intake_paused") if running else None
    out.update(
        agent={"running": running, "heartbeat_age_seconds": None if beat is None else round(time.time() - beat, 1),
               "version": facts.get("agent_version"), "mode": facts.get("mode")},
        packages=counts,
        oldest_queued_age_seconds=None if oldest is None else round(time.time() - oldest, 1),
        spool_bytes=spool_bytes,
        spool_max_bytes=cfg.spool_max_bytes,
        intake={"paused": bool(paused), "reason": paused},
        measurements_waiting=facts.get("measurements_waiting", 0) if running else None,
        problems=[{"key": k, **v} for k, v in snap.get("problems", {}).items()] if running else [],
        progress=list(snap.get("progress", {}).values()) if running else [],
        failed=failed,
        sheets=sheets,
        control={"paused": bool(control.get("paused"))},
        facts={k: v for k, v in facts.items() if k not in ("intake_paused", "agent_version", "mode", "upload",
                                                           "upload_last_error")},
        upload=_upload_section(cfg, facts, running),
    )
    from agent.remote.report import remote_status  # keys the facility set, and which version
    out["remote"] = remote_status(cfg)
    out["summary"] = summarize(out).as_dict()  # the one user-facing state: tray, page and CLI show it
    return out


def _upload_section(cfg: Config, facts: dict[str, Any], running: bool) -> dict[str, Any] | None:
    """Connection and transfer facts the uploader reports (agent/transport/uploader.py)."""
    if cfg.upload is None:
        return None
    up = dict(facts.get("upload") or {"broker": cfg.upload.broker, "transfers": [], "recent": []})
    up["connected"] = bool(up.get("connected")) and running
    up.setdefault("last_error", facts.get("upload_last_error"))
    return up


def format_status(st: dict[str, Any]) -> str:
    p = st["packages"]
    agent = st["agent"]
    lines = [f"labedge status for device {st['device_id']} ({st['config']})"]
    sm = st.get("summary") or {}
    if sm:
        lines += [f"  {sm['state'].upper()}: {sm['reason']}", f"  what to do: {sm['action']}"]
    if agent.get("running"):
        lines.append(f"  agent: running, version {agent.get('version')}, "
                     + ("set up to upload" if agent.get("mode") == "online" else
                        "keeps measurements locally (not set up to upload)"))
    else:
        lines.append("  agent: not running" + (f" (last heartbeat {agent['heartbeat_age_seconds']:.0f} s ago)"
                                               if agent.get("heartbeat_age_seconds") else ""))
    lines.append(f"  packages: {p['queued']} queued, {p['uploading']} uploading, {p['delivered']} delivered, "
                 f"{p['failed']} failed")
    if st.get("oldest_queued_age_seconds") is not None:
        lines.append(f"  oldest waiting: {st['oldest_queued_age_seconds']:.0f} s")
    lines.append(f"  spool: {human(st['spool_bytes'])} of {human(st['spool_max_bytes'])}")
    cert = st.get("certificate")
    if cert and cert.get("not_after"):
        lines.append(f"  certificate: CN={cert['cn']}, valid until {cert['not_after'][:10]} ({cert['days_left']} days)")
    if cert and cert.get("warning"):
        lines.append(f"  WARNING: {cert['warning']}")
    if st["intake"]["paused"]:
        lines.append(f"  INTAKE PAUSED: {st['intake']['reason']}")
    for pr in st.get("progress", []):
        total = f" of {human(pr['total'])}" if pr.get("total") else ""
        lines.append(f"  in progress: {pr['label']} ({human(pr['done']) if pr.get('total') else pr['done']}{total})")
    up = st.get("upload")
    if up:
        lines.append(f"  broker {up.get('broker')}: " + ("connected" if up.get("connected") else
                     "NOT connected" + (f" ({up['last_error']})" if up.get("last_error") else "")))
        for t in up.get("transfers", []):
            lines.append(f"  uploading {t['package_id']}: {human(t['done_bytes'])} of {human(t['total_bytes'])}")
    sh = st.get("sheets") or {}
    if sh.get("held"):
        lines.append(f"  NEEDS A SHEET: {sh['held']} measurement(s) held: "
                     + ", ".join(f"{h['instrument_id']}:{h['name']}" for h in sh.get("held_list", [])[:5]))
    for iid, a in (sh.get("active") or {}).items():
        if a:
            lines.append(f"  active sheet for {iid}: {a.get('sample')} ({a.get('template')}, {a['sheet_id']})")
    for f in st.get("failed", []):
        lines.append(f"  FAILED {f['id']}: {f['error']}")
    for pr in st.get("problems", []):
        lines.append(f"  {pr['kind'].upper()}: {pr['message']}")
    from agent.remote.report import describe_remote
    lines += describe_remote(st.get("remote"))
    return "\n".join(lines)
