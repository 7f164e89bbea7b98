"""What the administrator is told about each device: ONE function (:func:`assess`) turns a status
document and the catalog's record into a line's facts, and everything shown (CLI, JSON, dashboard)
comes from it.

Never "fine" by default: a device the catalog knows that has been silent for more than
:data:`STALE_HEARTBEATS` heartbeats is **stale**; a device that stored packages but never sent a
status is stale too; an offline document is offline whatever else it says.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from facility.fleet.pushes import BAD, effective
from wire.status import merge_offline

STALE_HEARTBEATS = 3
CERT_ERROR_DAYS = 7
CERT_WARN_DAYS = 30
OLDEST_WARN_SECONDS = 3600.0
#: state -> (rank: lower needs attention first, symbol (shape, never colour alone), label)
STATES = {
    "offline": (0, "■", "OFFLINE"),
    "stale": (1, "◆", "STALE"),
    "error": (2, "✖", "ERROR"),
    "warning": (3, "▲", "WARN"),
    "ok": (4, "●", "OK"),
}


@dataclass
class DeviceLine:
    device: str
    state: str
    symbol: str
    label: str
    why: str                       # the state in words (English): what made it this state
    since: float | None            # online since / offline since / last seen (stale)
    last_seen: float | None
    agent_version: str | None
    config_version: str | None
    config_state: str | None
    queued: int | None
    failed: int | None
    oldest_waiting_s: float | None
    last_delivery: float | None
    cert_days: int | None
    paused: str | None
    held: int | None
    problems: list[dict[str, str]] = field(default_factory=list)
    problems_omitted: int = 0
    host: str | None = None
    os: str | None = None
    interval: int | None = None
    pc_state: str | None = None     # the PC's own state (its tray's), and why
    pc_reason: str | None = None
    #: the same as ``why``, as [{"code", "value", "text"}], so a page can say it in its own language
    reasons: list[dict[str, Any]] = field(default_factory=list)
    #: its result in the newest remote-config push that reached it (facility/fleet/pushes.py), or None
    last_push: dict[str, Any] | None = None

    @property
    def rank(self) -> int:
        return STATES[self.state][0]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"rank": self.rank}


def assess(device: str, doc: dict[str, Any] | None, catalog: dict[str, Any] | None, *, now: float,
           default_interval: int, received_at: float | None = None,
           last_push: dict[str, Any] | None = None) -> DeviceLine:
    """``doc``: the newest status document (live or retained), ``received_at`` when this tool itself
    received it live (None for a retained one); ``catalog``: the catalog's record of the device;
    ``last_push``: its result in the newest config push that reached it (the push history)."""
    cat = catalog or {}
    if not doc:
        doc = cat.get("status") or {}
    elif not doc.get("online") and cat.get("status"):
        doc = merge_offline(cat["status"], doc)  # a bare will: keep what the catalog heard while it was online
    interval = int(doc.get("interval") or default_interval)
    seen = [t for t in (cat.get("last_seen"), received_at if doc.get("online") else None,
                        _clamp(doc.get("sent_at") if doc.get("online") else doc.get("last_online_sent_at"), now))
            if t]
    last_seen = max(seen) if seen else cat.get("last_seen")
    q = doc.get("queue") or {}
    cert_days = None
    if doc.get("cert_not_after"):
        cert_days = int((float(doc["cert_not_after"]) - now) // 86400)
    cfg = doc.get("config") or {}
    line = DeviceLine(
        device=device, state="ok", symbol="", label="", why="", since=None, last_seen=last_seen,
        agent_version=doc.get("agent_version"), config_version=cfg.get("version"), config_state=cfg.get("state"),
        queued=q.get("queued"), failed=q.get("failed"), oldest_waiting_s=doc.get("oldest_waiting_s"),
        last_delivery=doc.get("last_delivery") or cat.get("last_stored"), cert_days=cert_days,
        paused=doc.get("paused"), held=doc.get("held"), problems=list(doc.get("problems") or []),
        problems_omitted=int(doc.get("problems_omitted") or 0), host=doc.get("host"), os=doc.get("os"),
        interval=interval, pc_state=doc.get("pc_state"), pc_reason=doc.get("pc_reason"),
        last_push=effective(last_push, doc))
    if not doc:
        line.state, line.since = "stale", cat.get("last_stored")
        reasons = [_r("never_reported", None, "has never reported a status (known from its packages)")]
    elif not doc.get("online"):
        line.state = "offline"
        line.since = cat.get("offline_since") if cat.get("offline_since") and not cat.get("online") else \
            (received_at or _clamp(doc.get("sent_at"), now))
        reason = str(doc.get("reason") or "offline")
        reasons = [{"stopped": _r("stopped", None, "the agent was stopped"),
                    "connection lost": _r("connection_lost", None, "connection lost (MQTT will)")}.get(
            reason, _r("offline", reason, reason))]
    elif last_seen is None or now - last_seen > STALE_HEARTBEATS * interval:
        line.state, line.since = "stale", last_seen
        reasons = [_r("silent", STALE_HEARTBEATS * interval,
                      f"silent for more than {STALE_HEARTBEATS} heartbeats ({STALE_HEARTBEATS * interval} s); "
                      "its last status said online")]
    else:
        line.since = _clamp(doc.get("connected_at"), now)
        errors, warnings = _findings(line)
        if errors:
            line.state, reasons = "error", errors
        elif warnings:
            line.state, reasons = "warning", warnings
        else:
            reasons = [_r("fine", None, "online, nothing waiting on anyone")]
    line.reasons = reasons
    line.why = "; ".join(r["text"] for r in reasons)
    line.symbol, line.label = STATES[line.state][1], STATES[line.state][2]
    return line


def _r(code: str, value: Any, text: str, detail: str | None = None) -> dict[str, Any]:
    """``detail``: words from the device or the catalog (a refusal's reason), shown as they are."""
    r = {"code": code, "value": value, "text": text + (f": {detail}" if detail else "")}
    if detail:
        r["detail"] = detail
    return r


def _findings(line: DeviceLine) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    errors: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    if line.failed:
        errors.append(_r("failed", line.failed, f"{line.failed} package(s) failed"))
    if line.cert_days is not None and line.cert_days < CERT_ERROR_DAYS:
        errors.append(_r("cert_expired", None, "certificate expired") if line.cert_days < 0 else
                      _r("cert_days", line.cert_days, f"certificate expires in {line.cert_days} d"))
    elif line.cert_days is not None and line.cert_days < CERT_WARN_DAYS:
        warnings.append(_r("cert_days", line.cert_days, f"certificate expires in {line.cert_days} d"))
    if line.config_state and line.config_state in ("error", "rejected", "failed"):
        errors.append(_r("config", line.config_state, f"config {line.config_state}"))
    elif line.last_push and line.last_push.get("state") in BAD:
        # the newest push that reached it was refused or rolled back: the PC runs on its previous config
        # (also when its status has moved on since, or it is offline and the history is all we have)
        state, version = line.last_push["state"], line.last_push.get("version")
        warnings.append(_r("push_" + state, version, f"{state.replace('_', ' ')} config version {version}",
                           str(line.last_push.get("reason") or "")[:400] or None))
    elif line.config_state in ("refused", "rolled_back"):  # remote config: the PC runs on its previous one
        warnings.append(_r("config", line.config_state, f"remote config {line.config_state.replace('_', ' ')}"))
    n_err = sum(1 for p in line.problems if p.get("kind") == "error")
    n_warn = sum(1 for p in line.problems if p.get("kind") == "warning")
    if n_err:
        errors.append(_r("problems", n_err, f"{n_err} problem(s)"))
    if line.paused:
        warnings.append(_r("paused", line.paused, f"intake paused: {line.paused}"))
    if line.held:
        warnings.append(_r("held", line.held, f"{line.held} measurement(s) wait for a sheet"))
    if line.oldest_waiting_s and line.oldest_waiting_s > OLDEST_WARN_SECONDS:
        warnings.append(_r("oldest", _age(line.oldest_waiting_s), f"oldest upload waits {_age(line.oldest_waiting_s)}"))
    if n_warn and not errors:
        warnings.append(_r("warnings", n_warn, f"{n_warn} warning(s)"))
    # The PC's own judgement (its tray) can only make the line worse, never better
    said = line.pc_reason or line.pc_state or ""
    if line.pc_state == "error" and not errors:
        errors.append(_r("pc_says", said, f"the PC says: {said}"))
    elif line.pc_state == "needs attention" and not errors and not warnings:
        warnings.append(_r("pc_says", said, f"the PC says: {said}"))
    return errors, warnings


def _clamp(t: Any, now: float) -> float | None:
    """A device's clock can be wrong: never show a time in the future."""
    return None if t is None else min(float(t), now)


def sort_lines(lines: list[DeviceLine]) -> list[DeviceLine]:
    """What needs attention first: offline, stale, error, warning, ok; then most failed, then by name."""
    return sorted(lines, key=lambda d: (d.rank, -(d.failed or 0), -(d.queued or 0), d.device))


def build_lines(statuses: dict[str, tuple[dict[str, Any], float | None]], catalog: list[dict[str, Any]], *,
                default_interval: int, now: float | None = None,
                revoked: set[str] | frozenset[str] = frozenset(),
                pushes: dict[str, dict[str, Any]] | None = None) -> list[DeviceLine]:
    """``statuses``: device -> (doc, received_at or None); ``catalog``: ``Catalog.devices()``;
    ``revoked``: devices whose certificate the CA revoked (the broker refuses them); ``pushes``:
    device -> its last config push result (:func:`facility.fleet.pushes.last_results`)."""
    now = time.time() if now is None else now
    cat = {c["device"]: c for c in catalog}
    out = []
    for device in sorted(set(statuses) | set(cat) | set(revoked)):
        doc, rx = statuses.get(device, (None, None))
        line = assess(device, doc, cat.get(device), now=now, default_interval=default_interval, received_at=rx,
                      last_push=(pushes or {}).get(device))
        if device in revoked:
            mark_revoked(line)
        out.append(line)
    return sort_lines(out)


def mark_revoked(line: DeviceLine) -> None:
    """A revoked device is refused at its next connect: never "ok", and the first reason says why."""
    line.reasons = [_r("revoked", None, "certificate revoked: the broker refuses it")] + \
        [r for r in line.reasons if r["code"] != "fine"]
    line.why = "; ".join(r["text"] for r in line.reasons)
    if line.state in ("ok", "warning"):
        line.state = "error"
    line.symbol, line.label = STATES[line.state][1], STATES[line.state][2]


# ------------------------------------------------------------------------------ words
def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = max(0.0, float(seconds))
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= n:
            return f"{s / n:.0f}{unit}"
    return f"{s:.0f}s"


def ago(t: float | None, now: float) -> str:
    return "-" if t is None else _age(now - t) + " ago"


def format_line(d: DeviceLine, now: float) -> str:
    # "up 2h" (online for), "down 3d" (offline for), "last seen 5m ago": "up 2h ago" read as a past event
    when = "-" if d.since is None else _age(now - d.since)
    since = {"offline": f"down {when}", "stale": f"last seen {ago(d.since, now)}"}.get(d.state, f"up {when}")
    parts = [f"{d.symbol} {d.label:<7} {d.device:<24}",
             since,
             f"v{d.agent_version or '?'}",
             f"cfg {d.config_version or '?'}/{d.config_state or '?'}",
             f"q {d.queued if d.queued is not None else '-'} f {d.failed if d.failed is not None else '-'}",
             f"oldest {_age(d.oldest_waiting_s) if d.oldest_waiting_s else '-'}",
             f"delivered {ago(d.last_delivery, now)}",
             f"cert {str(d.cert_days) + 'd' if d.cert_days is not None else '-'}"]
    text = "  ".join(parts)
    if d.state != "ok":
        text += f"  | {d.why}"
    probs = [p["text"] for p in d.problems[:2]]
    if probs:
        text += "  | " + "; ".join(probs)[:200]
    if d.problems_omitted:
        text += f" (+{d.problems_omitted} more not sent)"
    return text


def format_table(lines: list[DeviceLine], now: float) -> str:
    counts = {s: sum(1 for d in lines if d.state == s) for s in STATES}
    head = (f"{len(lines)} device(s): " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)) if lines else \
        "no devices known yet (none has sent a status, and the catalog has none)"
    return "\n".join([head, *(format_line(d, now) for d in lines)])
