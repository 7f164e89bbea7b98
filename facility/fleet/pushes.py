"""The remote-config push history as the fleet view shows it: read-only, from the catalog that
:class:`facility.fleet.data.FleetData` opened read-only (the writer is facility/remote/history.py).

The tables exist only once an administrator pushed (their own ledger ``_config_migrations``): no
ledger means "no configuration pushed yet", a ledger from a newer labedge is said in words, and the
rest of the dashboard goes on either way. Every read is bounded (pushes, results per push, results
per device): a push to a group of a thousand PCs must not make each 2-second poll carry them all.

A result the history still has as ``sent``/``no_answer`` is completed from the device's own status
(:func:`effective`), as ``labedge fleet config status`` would record it: the dashboard never writes.
"""
from __future__ import annotations

import json
from typing import Any

from facility.catalog.db import Database
from facility.catalog.migrations import CONFIG_HISTORY, ledger_status
from facility.remote.session import outcome_for

MAX_PUSHES = 50
MAX_RESULTS = 200        # per push shown; the rest are counted (refused / rolled back listed first)
FULL_PUSHES = 10         # the newest pushes list every result; older ones only what was not applied
MAX_DEVICE_PUSHES = 10   # on a device's page
WAITING = ("sent", "no_answer")
BAD = ("refused", "rolled_back")
_ORDER = "CASE state WHEN 'refused' THEN 0 WHEN 'rolled_back' THEN 0 WHEN 'sent' THEN 1 " \
         "WHEN 'no_answer' THEN 1 ELSE 2 END"


def availability(db: Database) -> dict[str, Any] | None:
    """None when the history can be read; else why not, as {"code", "value", "text"} (the page says
    it in its language from ``code``)."""
    state, names = ledger_status(db, CONFIG_HISTORY)
    if state == "ok":
        return None
    value = ", ".join(names)
    text = {"absent": "no configuration pushed yet",
            "newer": f"the push history was written by a newer labedge (migrations {value} in "
                     f"{CONFIG_HISTORY.table}): upgrade this dashboard to see it",
            "lacking": f"the push history lacks migrations {value}: {CONFIG_HISTORY.applier}"}[state]
    return {"code": state, "value": value, "text": text}


def _targets(text: Any) -> dict[str, Any]:
    try:
        t = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return t if isinstance(t, dict) else {}


def targeted(targets: dict[str, Any], device: str, groups: list[str]) -> bool:
    """Whether a push's targets name ``device`` (directly, by one of the groups it reports, or all)."""
    if targets.get("all") is True:
        return True
    devices, wanted = targets.get("devices"), targets.get("groups")
    return (isinstance(devices, list) and device in devices) or \
        (isinstance(wanted, list) and any(g in wanted for g in groups))


def effective(result: dict[str, Any] | None, doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """``result`` completed from the device's status when the history has no answer yet."""
    if not result or result.get("state") not in WAITING:
        return result
    got = outcome_for(doc, int(result["version"]))
    if not got:
        return result
    return {**result, "state": got[0], "reason": got[1], "reported": True}


def recent(db: Database, statuses: dict[str, dict[str, Any]], limit: int = MAX_PUSHES) -> list[dict[str, Any]]:
    """The newest pushes first, each with its device results (bounded) and its counts per state."""
    pushes = [dict(zip(("id", "version", "signer", "key_id", "targets", "pushed_at", "state", "note", "host",
                        "imported_from"), r))
              for r in db.query("SELECT id, version, signer, key_id, targets, pushed_at, state, note, host, "
                                "imported_from FROM config_pushes ORDER BY id DESC LIMIT ?", (int(limit),))]
    if not pushes:
        return []
    counts: dict[int, dict[str, int]] = {}
    for push_id, state, n in db.query("SELECT push_id, state, COUNT(*) FROM config_results WHERE push_id >= ? "
                                      "GROUP BY push_id, state", (pushes[-1]["id"],)):
        counts.setdefault(int(push_id), {})[str(state)] = int(n)
    for i, p in enumerate(pushes):
        p["targets"] = _targets(p["targets"])
        p["counts"] = dict(sorted(counts.get(int(p["id"]), {}).items()))  # one order whatever the engine
        # (a poll every 2 s: 50 pushes x 200 applied rows would be ~1 MiB of JSON, the refusals are what matter)
        only = "" if i < FULL_PUSHES else "AND state <> 'applied' "
        rows = db.query(f"SELECT device, version, state, reason, at FROM config_results WHERE push_id = ? {only}"
                        f"ORDER BY {_ORDER}, device LIMIT ?", (p["id"], MAX_RESULTS))
        p["results"] = [effective(dict(zip(("device", "version", "state", "reason", "at"), r)), statuses.get(r[0]))
                        for r in rows]
        p["results_omitted"] = max(0, sum(p["counts"].values()) - len(rows))
    return pushes


def last_results(db: Database) -> dict[str, dict[str, Any]]:
    """device -> its result in the newest push that reached it (one scan, one row per device)."""
    rows = db.query("SELECT r.device, r.push_id, r.version, r.state, r.reason, r.at, p.signer, p.pushed_at "
                    "FROM config_results r JOIN (SELECT device, MAX(push_id) AS m FROM config_results "
                    "GROUP BY device) l ON r.device = l.device AND r.push_id = l.m "
                    "JOIN config_pushes p ON p.id = r.push_id")
    return {r[0]: dict(zip(("device", "push_id", "version", "state", "reason", "at", "signer", "pushed_at"), r))
            for r in rows}


def device_pushes(db: Database, device: str, groups: list[str], doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The pushes that targeted ``device``, newest first: its result in each, and a newer push that
    named it but never reached it (its wave not yet sent, or the rollout stopped before it)."""
    out = [effective(dict(zip(("push_id", "version", "state", "reason", "at", "signer", "pushed_at",
                               "push_state"), r)), doc)
           for r in db.query("SELECT r.push_id, r.version, r.state, r.reason, r.at, p.signer, p.pushed_at, p.state "
                             "FROM config_results r JOIN config_pushes p ON p.id = r.push_id WHERE r.device = ? "
                             "ORDER BY r.push_id DESC LIMIT ?", (device, MAX_DEVICE_PUSHES))]
    newest = int(out[0]["push_id"]) if out else 0
    for push_id, version, signer, pushed_at, state, targets in db.query(
            "SELECT id, version, signer, pushed_at, state, targets FROM config_pushes WHERE id > ? "
            "ORDER BY id DESC LIMIT ?", (newest, MAX_PUSHES)):
        if targeted(_targets(targets), device, groups):
            out.insert(0, {"push_id": push_id, "version": version, "signer": signer, "pushed_at": pushed_at,
                           "push_state": state, "at": None, "reason": "",
                           "state": "waiting" if state in ("running", "aborting") else "not_sent"})
            break  # the newest such push is what the page needs; older ones did not reach it either
    return out[:MAX_DEVICE_PUSHES]
