"""What the tray shows, derived from `labedge status` (pure, so Linux tests cover it).

The states follow the desktop-sync clients users already know (Nextcloud): up to date, working,
paused, offline, attention, error; the tooltip says in plain words what is stuck and why.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

UP_TO_DATE, WORKING, PAUSED, OFFLINE, ATTENTION, ERROR = "up-to-date", "working", "paused", "offline", "attention", "error"


@dataclass(frozen=True)
class TrayState:
    level: str
    title: str
    lines: list[str] = field(default_factory=list)

    @property
    def tooltip(self) -> str:
        # Windows truncates tray tooltips at 127 characters: keep the most important first.
        return "\n".join([f"labedge: {self.title}", *self.lines])[:127]


def tray_state(st: dict[str, Any]) -> TrayState:
    p = st.get("packages", {})
    queued, uploading, failed = p.get("queued", 0), p.get("uploading", 0), p.get("failed", 0)
    waiting = f"{queued + uploading} package(s) waiting" if queued + uploading else "nothing waiting"
    agent = st.get("agent", {})
    if not agent.get("running"):
        return TrayState(ERROR, "the agent is not running", [waiting, "measurements are not being collected"])
    ctl = st.get("control", {})
    if ctl.get("paused"):
        if ctl.get("by") == "facility":  # the administrator's reason first: it is what the user asks about
            return TrayState(PAUSED, "paused by the facility", [ctl.get("reason") or "no reason given", waiting])
        return TrayState(PAUSED, "paused by the user", [waiting, "choose Resume to continue"])
    problems = [pr for pr in st.get("problems", []) if pr.get("kind") == "error"]
    if failed:
        first = (st.get("failed") or [{}])[0].get("error") or "see the local page"
        return TrayState(ERROR, f"{failed} package(s) could not be uploaded", [first])
    if st.get("intake", {}).get("paused"):
        return TrayState(ATTENTION, "not taking new measurements", [st["intake"]["reason"]])
    held = st.get("sheets", {}).get("held_count", 0) if isinstance(st.get("sheets"), dict) else 0
    if held:
        return TrayState(ATTENTION, f"{held} measurement(s) need a sample sheet", ["open the local page to fill it"])
    if problems:
        return TrayState(ATTENTION, "something needs a look", [problems[0]["message"]])
    busy = next((pr for pr in st.get("problems", []) if pr.get("key") == "upload:receiver"), None)
    if busy:
        return TrayState(ATTENTION, "uploads wait for the facility's receiver", [waiting, busy["message"]])
    upload = st.get("upload") if isinstance(st.get("upload"), dict) else {}
    if st.get("offline") or agent.get("mode") == "offline":
        return TrayState(OFFLINE, "offline: packages are kept until upload is configured", [waiting])
    if upload and upload.get("connected") is False:
        reason = upload.get("last_error") or "the broker cannot be reached"
        return TrayState(OFFLINE, "offline: will upload when the broker is reachable", [reason, waiting])
    if queued + uploading or st.get("progress") or st.get("measurements_waiting"):
        return TrayState(WORKING, "uploading" if uploading else "working", [waiting])
    return TrayState(UP_TO_DATE, "up to date", [f"{p.get('delivered', 0)} package(s) delivered"])
