"""`labedge status`: the queue and health, read from the state DB (works with the agent stopped).

Whether the agent runs comes from the kernel lock on its state folder (agent.instance), not
from a heartbeat's age: a stopped agent is never "running", and a running one whose heartbeat
stops (its disk is full) is "running, not writing its state", which is a problem.
"""
from __future__ import annotations

import shutil
import time
from typing import Any

from agent.config import Config
from agent.intake import disk_low_reason, human
from agent.state.store import open_reader
from agent.summary import summarize

HEARTBEAT_STALE = 10.0

#: `labedge status` exit codes, for systemd, WinSW and monitoring scripts (README "Commands").
EXIT_HEALTHY, EXIT_PROBLEMS, EXIT_BAD_CONFIG, EXIT_NOT_RUNNING = 0, 1, 2, 3


def _config_problems(cfg: Config) -> list[dict[str, Any]]:
    """What `run` would refuse in this config now (a watch folder gone), as status problems."""
    from agent.check import config_problems
    return [{"key": f"config:{p.where}", "kind": "error", "message": p.message}
            for p in config_problems(cfg) if p.stops_run and p.severity == "error"]


def _page_address(cfg: Config, facts: dict[str, Any], running: bool) -> str | None:
    if not cfg.web.enabled:
        return None
    if running and facts.get("web_url"):
        return facts["web_url"]
    return f"http://127.0.0.1:{cfg.web.port}/" if cfg.web.port else None


def _live_disk(cfg: Config) -> str | None:
    """The spool disk's state read now, so a full disk is told even when the agent cannot write."""
    try:
        return disk_low_reason(cfg.spool_dir, cfg.min_free_bytes)
    except OSError:
        return None


def build_status(cfg: Config) -> dict[str, Any]:
    from agent.instance import liveness

    out: dict[str, Any] = {"device_id": cfg.device_id, "config": str(cfg.source),
                           "state_db": str(cfg.state_db), "spool_dir": str(cfg.spool_dir),
                           "offline": cfg.upload is None}
    if cfg.upload is not None:  # read the file directly: the warning must show with the agent stopped
        from agent.transport.enroll import certificate_status
        out["certificate"] = certificate_status(cfg.upload.cert_file, cfg.device_id)
    locked, holder = liveness(cfg)
    config_problems = _config_problems(cfg)
    disk = _live_disk(cfg) if cfg.spool_dir.exists() else None
    store = open_reader(cfg.state_db)  # None: never ran, or it is creating its tables right now
    if store is None:
        out.update(agent={"running": bool(locked), "pid": holder.get("pid"),
                          "note": "the agent is starting" if locked else "the agent has never run with this config"},
                   packages={"queued": 0, "uploading": 0, "delivered": 0, "failed": 0, "superseded": 0},
                   oldest_queued_age_seconds=None, spool_bytes=0, spool_max_bytes=cfg.spool_max_bytes,
                   intake={"paused": False, "reason": None}, problems=config_problems, progress=[], failed=[],
                   page=_page_address(cfg, {}, False))
        out["summary"] = summarize(out).as_dict()
        return out
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
        unsent = _unsent(store, health)
    finally:
        store.close()
    beat = health.get("heartbeat", {}).get("value")
    snap = health.get("agent", {}).get("value", {"facts": {}, "problems": {}, "progress": {}})
    facts = snap.get("facts", {})
    age = None if beat is None else round(time.time() - beat, 1)
    fresh = age is not None and age < HEARTBEAT_STALE
    # the lock is the truth; only a user who cannot open the lock file falls back to the heartbeat
    running = bool(locked) if locked is not None else fresh
    problems = [{"key": k, **v} for k, v in snap.get("problems", {}).items()] if running else []
    paused = facts.get("intake_paused") if running else None
    if running and not fresh and not _just_started(holder):
        free = _free(cfg)
        problems.append({"key": "status:stale", "kind": "error", "message": (
            f"the agent is running (PID {holder.get('pid', '?')}) but has not written its state for "
            + (f"{age:.0f} s" if age is not None else "a while")
            + (f"; the state folder's disk has {human(free)} free" if free is not None else "")
            + ": what follows may be out of date")})
    if running and disk:
        paused = disk if not paused or not fresh else paused
    problems += config_problems
    out.update(
        agent={"running": running, "pid": holder.get("pid") if running else None,
               "heartbeat_age_seconds": age,
               "version": facts.get("agent_version"), "mode": facts.get("mode")},
        packages=counts,
        oldest_queued_age_seconds=None if oldest is None else round(time.time() - oldest, 1),
        spool_bytes=spool_bytes,
        spool_max_bytes=cfg.spool_max_bytes,
        intake={"paused": bool(paused), "reason": paused},
        measurements_waiting=facts.get("measurements_waiting", 0) if running else None,
        problems=problems,
        progress=list(snap.get("progress", {}).values()) if running else [],
        failed=failed,
        sheets=sheets,
        control=control_section(control),
        facts={k: v for k, v in facts.items() if k not in ("intake_paused", "agent_version", "mode", "upload",
                                                           "upload_last_error")},
        upload=_upload_section(cfg, facts, running, unsent),
        page=_page_address(cfg, facts, running),
    )
    from agent.remote.report import remote_status  # keys the facility set, and which version
    out["remote"] = remote_status(cfg)
    out["summary"] = summarize(out).as_dict()  # the one user-facing state: tray, page and CLI show it
    return out


def control_section(control: dict[str, Any]) -> dict[str, Any]:
    """Who paused collection and why, in the words the tray, the local page and `status` all show."""
    paused = bool(control.get("paused"))
    by = control.get("paused_by") if paused else None
    reason = str(control.get("pause_reason") or "")[:200] if paused and by == "facility" else None
    words = None
    if paused:
        words = (f"paused by the facility: {reason or 'no reason given'}" if by == "facility"
                 else "paused by the user")
    return {"paused": paused, "by": by or ("user" if paused else None), "reason": reason, "words": words}


def _just_started(holder: dict[str, Any]) -> bool:
    """The lock is taken before the first heartbeat: a silent state DB is no problem yet."""
    import datetime as dt
    try:
        started = dt.datetime.fromisoformat(str(holder["started_at"])).timestamp()
    except (KeyError, ValueError, TypeError):
        return False
    return time.time() - started < HEARTBEAT_STALE


def _free(cfg: Config) -> int | None:
    try:
        return shutil.disk_usage(cfg.state_dir).free
    except OSError:
        return None


def exit_code(st: dict[str, Any]) -> int:
    """0 running and healthy, 1 running with problems, 3 not running, 2 a config `run` would refuse."""
    errors = [p for p in st.get("problems", []) if p.get("kind") == "error"]
    if not (st.get("agent") or {}).get("running"):
        return EXIT_BAD_CONFIG if any(str(p.get("key", "")).startswith("config:") for p in errors) \
            else EXIT_NOT_RUNNING
    cert = st.get("certificate") or {}
    if errors or (st.get("intake") or {}).get("paused") or st.get("failed") or cert.get("expired"):
        return EXIT_PROBLEMS
    return EXIT_HEALTHY


def _unsent(store: Any, health: dict[str, Any]) -> set[str]:
    """The transfers in the uploader's last snapshot whose package the queue still holds unsent."""
    snap = (health.get("agent") or {}).get("value") or {}
    transfers = ((snap.get("facts") or {}).get("upload") or {}).get("transfers") or []
    ids = {str(t.get("package_id")) for t in transfers if isinstance(t, dict)}
    return {i for i in ids if (row := store.package(i)) is not None and row.state in ("queued", "uploading")}


def _upload_section(cfg: Config, facts: dict[str, Any], running: bool,
                    unsent: set[str] | None = None) -> dict[str, Any] | None:
    """Connection and transfer facts the uploader reports (agent/transport/uploader.py).

    The snapshot is written about once a second, the queue at once: a package delivered since the
    last snapshot, or any transfer of an agent that is no longer running, is not "uploading"."""
    if cfg.upload is None:
        return None
    up = dict(facts.get("upload") or {"broker": cfg.upload.broker, "transfers": [], "recent": []})
    up["transfers"] = [t for t in up.get("transfers") or []
                       if running and unsent is not None and t.get("package_id") in unsent]
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
        lines.append(f"  agent: running (PID {agent.get('pid') or '?'}), version {agent.get('version')}, "
                     + ("keeps measurements locally (not set up to upload)" if st.get("offline") else
                        "set up to upload"))
    else:
        lines.append("  agent: not running" + (f" (last heartbeat {agent['heartbeat_age_seconds']:.0f} s ago)"
                                               if agent.get("heartbeat_age_seconds") else ""))
    if st.get("page"):
        lines.append(f"  local page: {st['page']}" + ("" if agent.get("running") else " (when the agent runs)"))
    lines.append(f"  packages: {p['queued']} queued, {p['uploading']} uploading, {p['delivered']} delivered, "
                 f"{p['failed']} failed"
                 + (f", {p['superseded']} superseded by a later version before upload (never sent)"
                    if p.get("superseded") else ""))
    if st.get("oldest_queued_age_seconds") is not None:
        lines.append(f"  oldest waiting: {st['oldest_queued_age_seconds']:.0f} s")
    lines.append(f"  spool: {human(st['spool_bytes'])} of {human(st['spool_max_bytes'])}")
    cert = st.get("certificate")
    if cert and cert.get("not_after"):
        lines.append(f"  certificate: CN={cert['cn']}, valid until {cert['not_after'][:10]} ({cert['days_left']} days)")
    if cert and cert.get("warning"):
        lines.append(f"  WARNING: {cert['warning']}")
    if (st.get("control") or {}).get("words"):
        lines.append(f"  COLLECTION PAUSED: {st['control']['words']}")
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
