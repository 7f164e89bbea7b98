"""The queue page (``/``) and its JSON twin (``/api/status``), in one language (agent.sheets.i18n).

Server-rendered; every value from the state (file names, sample names, errors) goes through
``html.escape``, so a file called ``<script>...`` is shown as text. The small script posts actions
(pause, pick a sheet, attach files, retry) with the token, and swaps in the live sections of a fresh
copy of this page every two seconds (no full reload). The state line is ``agent.summary``'s, the
same words the tray and ``labedge status`` show.
"""
from __future__ import annotations

import datetime as dt
import html
import json
import secrets
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.intake import human
from agent.sheets.html import json_for_script, page, static_text
from agent.sheets.i18n import w
from agent.status import build_status

if TYPE_CHECKING:
    from agent.sheets.server import LocalServer

E = html.escape
_PROV: dict[str, dict[str, Any]] = {}         # package id -> what the row shows (a package never changes)
_RATE: dict[str, tuple[float, int]] = {}      # package id -> (first seen, bytes done) for the time left
_LOCK = threading.Lock()


def _when(t: float | None, lang: str) -> str:
    if not t:
        return ""
    d = dt.datetime.fromtimestamp(t)
    return d.strftime("%Y年%m月%d日 %H:%M") if lang == "ja" else d.strftime("%Y-%m-%d %H:%M")


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def status_data(srv: "LocalServer") -> dict[str, Any]:
    pk = srv.store.list_packages(limit=50)
    st = build_status(srv.cfg)
    return {
        "device_id": srv.cfg.device_id,
        "summary": st.get("summary"),
        "packages": srv.store.counts(),
        "recent": [{"id": p.id, "instrument_id": p.instrument_id, "kind": p.kind, "parent_id": p.parent_id,
                    "state": p.state, "bytes": p.bytes, "n_files": p.n_files, "created_at": p.created_at,
                    "error": p.last_error, **_row_info(srv, p)} for p in pk],
        "held": [h.summary() for h in srv.db.holds(limit=100)],
        "settling": _settling(st),
        "active": {i.id: (s.summary() if (s := srv.db.active(i.id)) else None) for i in srv.cfg.instruments},
    }


def _settling(st: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for k, v in (st.get("facts") or {}).items():
        if k.startswith("settling:") and isinstance(v, list):
            out += [{"instrument_id": k[len("settling:"):], "name": str(n)} for n in v]
    return out


def _row_info(srv: "LocalServer", p: Any) -> dict[str, Any]:
    """File names, sample name, pairing rule and measurement time of a package (cached: immutable)."""
    with _LOCK:
        hit = _PROV.get(p.id)
    if hit is not None:
        return hit
    info: dict[str, Any] = {"files": [], "sample": None, "pairing": None, "taken_at": None}
    try:
        prov = json.loads((Path(p.path) / "data/labedge/provenance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        prov = None
    if isinstance(prov, dict):
        src = [s for s in prov.get("sources") or [] if isinstance(s, dict)]
        info["files"] = [Path(str(s.get("raw", ""))).name or Path(str(s.get("path", ""))).name for s in src][:20]
        times = [s.get("mtime_ns") for s in src if isinstance(s.get("mtime_ns"), int)]
        pr = prov.get("pairing") if isinstance(prov.get("pairing"), dict) else {}
    else:  # delivered and freed (delete_delivered) before the page first showed it: the state DB's record
        rows = srv.store.files_of(p.id)
        info["files"] = [Path(f["path"]).name for f in rows][:20]
        times = [f["mtime_ns"] for f in rows if isinstance(f.get("mtime_ns"), int)]
        pr = srv.store.pairing_of(p.id) or {}
    info["taken_at"] = max(times) / 1e9 if times else None
    if pr:
        det = pr.get("details") if isinstance(pr.get("details"), dict) else {}
        info["pairing"] = {"status": pr.get("status"), "source": pr.get("source"), "sheet_id": pr.get("sheet_id"),
                           "sheet_file": Path(str(det["sheet_file"])).name if det.get("sheet_file") else None,
                           "note": det.get("note")}
        sheet = srv.db.sheet(pr["sheet_id"]) if isinstance(pr.get("sheet_id"), str) else None
        if sheet is not None:
            info["sample"] = str(sheet.values.get("sample.names") or "") or None
    with _LOCK:
        if len(_PROV) > 2000:
            _PROV.clear()
        _PROV[p.id] = info
    return info


def status_lines(st: dict[str, Any], lang: str) -> list[tuple[str, str]]:
    """(kind, text) under the summary: the other things that hold, in the page's language."""
    out: list[tuple[str, str]] = []
    sm = st.get("summary") or {}
    ctl = st.get("control", {})
    if ctl.get("paused") and sm.get("state") != "paused":
        out.append(("warning", w("paused_facility", lang, reason=ctl.get("reason") or "-") if ctl.get("by") == "facility"
                    else w("paused_user", lang)))
    cert = st.get("certificate")
    if isinstance(cert, dict) and cert.get("warning") and cert["warning"] != sm.get("detail"):
        out.append(("warning", f"{w('cert', lang)}: {cert['warning']}"))
    for pr in st.get("problems", []):
        if str(pr.get("message")) != sm.get("detail") and not str(pr.get("key", "")).startswith("upload:"):
            out.append((str(pr.get("kind", "error")), str(pr.get("message", ""))))
    if st.get("measurements_waiting"):
        out.append(("info", w("waiting_n", lang, n=st["measurements_waiting"])))
    from agent.remote.report import page_lines  # keys the facility set, and which version set them
    return out + page_lines(st.get("remote"), lang)


def _status_card(st: dict[str, Any], lang: str) -> str:
    sm = st.get("summary") or {}
    words = sm.get("ja") if lang == "ja" else sm
    paused = bool(st.get("control", {}).get("paused"))
    slug = str(sm.get("state", "error")).replace(" ", "-")
    rows = "".join(f'<li class="{E(kind)}">{E(text)}</li>' for kind, text in status_lines(st, lang))
    button = (f'<button class="btn small" id="pause" type="button" data-paused="{int(not paused)}">'
              + E(w("resume" if paused else "pause", lang)) + "</button>")
    return (f'<section class="card" id="status"><h2>{E(w("status", lang))}</h2>'
            f'<p class="summary {E(slug)}" id="summary" data-state="{E(str(sm.get("state")))}">'
            f'<b class="state-word">{E(str(words.get("state", "")))}</b> '
            f'<span id="reason">{E(str(words.get("reason", "")))}</span></p>'
            f'<p class="hint" id="action">{E(str(words.get("action", "")))}</p>'
            f'{f"<ul class=status>{rows}</ul>" if rows else ""}'
            # the technical words (a broker address, an error) for whoever helps the user: folded away
            + (f'<details id="detail"><summary>{E(w("details", lang))}</summary><p class="mono">'
               f'{E(str(sm["detail"]))}</p></details>' if sm.get("detail") else "")
            + f"{button}</section>")


def _settling_card(st: dict[str, Any], lang: str) -> str:
    items = _settling(st)
    if not items:
        return '<section class="card" id="settling" hidden></section>'
    li = "".join(f'<li><span class="mono">{E(x["name"])}</span> <span class="hint">({E(x["instrument_id"])})</span>'
                 "</li>" for x in items[:20])
    return (f'<section class="card" id="settling"><h2>{E(w("settling", lang))} ({len(items)})</h2>'
            f'<p class="hint">{E(w("settling_hint", lang))}</p><ul>{li}</ul></section>')


def _held_card(srv: "LocalServer", st: dict[str, Any], lang: str) -> str:
    holds = srv.db.holds(limit=100)
    due = {h.get("hold"): h.get("unpaired_at") for h in (st.get("sheets") or {}).get("held_list", [])}
    parts = [f'<section class="card" id="held"><h2>{E(w("held", lang))} ({len(holds)})</h2>']
    if not holds:
        parts.append(f'<p class="hint">{E(w("nothing", lang))}</p></section>')
        return "".join(parts)
    recent = srv.db.recent(limit=15)
    opts = "".join(f'<option value="{E(s.id)}">{E(_short(str(s.values.get("sample.names") or s.id)))} '
                   f'({E(s.template)}, {E(_when(s.created_at, lang))})</option>' for s in recent)
    parts.append(f"<table><tr><th>{E(w('instrument', lang))}</th><th>{E(w('measurement', lang))}</th>"
                 f"<th>{E(w('since', lang))}</th><th>{E(w('actions', lang))}</th></tr>")
    for h in holds:
        rels = h.summary()["files"]
        files = ", ".join(rels[:5]) + (" …" if len(rels) > 5 else "") if rels != [h.measurement.name] else ""
        when = due.get(h.fingerprint)
        countdown = (f'<div class="countdown" data-deadline="{when:.0f}">{E(w("unpaired_in", lang))} '
                     f'<b class="left">{max(0, int(when - time.time()))} s</b></div>' if when
                     else f'<div class="hint">{E(w("kept", lang))}</div>')
        pick = (f'<select data-pick-for="{E(h.fingerprint)}"><option value="">{E(w("pick", lang))}</option>'
                f'{opts}</select> <button class="btn small" type="button" data-pick="{E(h.fingerprint)}">'
                f'{E(w("apply", lang))}</button>') if recent else ""
        parts.append(f'<tr data-hold="{E(h.fingerprint)}"><td>{E(h.instrument_id)}</td>'
                     f'<td>{E(h.measurement.name)}<div class="hint mono">{E(files)}</div>{countdown}</td>'
                     f"<td>{E(_when(h.held_at, lang))}</td>"
                     f'<td><a class="btn small" href="/sheet/{E(h.instrument_id)}?hold={E(h.fingerprint)}">'
                     f"{E(w('fill', lang))}</a> {pick}</td></tr>")
    parts.append("</table></section>")
    return "".join(parts)


def _progress(st: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per package being uploaded: percent done and seconds left (from the rate since first seen)."""
    out = {}
    now = time.monotonic()
    transfers = (st.get("upload") or {}).get("transfers") or []
    with _LOCK:
        for gone in set(_RATE) - {t.get("package_id") for t in transfers}:
            del _RATE[gone]
    for t in transfers:
        pid, done, total = t.get("package_id"), int(t.get("done_bytes") or 0), int(t.get("total_bytes") or 0)
        if not pid or not total:
            continue
        with _LOCK:
            t0, d0 = _RATE.setdefault(pid, (now, done))
        rate = (done - d0) / (now - t0) if now - t0 > 1 and done > d0 else None
        out[pid] = {"pct": 100 * done // total, "left": (total - done) / rate if rate else None}
    return out


def _label(p: Any, info: dict[str, Any], lang: str) -> str:
    """How the user recognises a measurement: sample, file names and when it was measured."""
    files = info.get("files") or []
    names = ", ".join(files[:2]) + (f" +{len(files) - 2}" if len(files) > 2 else "")
    sample = info.get("sample") or w("unpaired", lang)
    return f"{sample} — {names or p.id} ({_when(info.get('taken_at') or p.created_at, lang)})"


def _packages_card(srv: "LocalServer", st: dict[str, Any], lang: str) -> str:
    pkgs = srv.store.list_packages(limit=50)
    prog = _progress(st)
    parts = [f'<section class="card" id="packages"><h2>{E(w("packages", lang))}</h2><table>'
             f"<tr><th>{E(w('files', lang))}</th><th>{E(w('sample', lang))}</th><th>{E(w('taken', lang))}</th>"
             f"<th>{E(w('state', lang))}</th></tr>"]
    for p in pkgs:
        info = _row_info(srv, p)
        files = info.get("files") or []
        fnames = "<br>".join(E(f) for f in files[:3]) + (f' <span class="hint">+{len(files) - 3}</span>'
                                                          if len(files) > 3 else "")
        pr = info.get("pairing") or {}
        if p.kind != "measurement":
            sample = f'<span class="hint">{E(w("attachment_of", lang))} {E(p.parent_id or "")}</span>'
        elif pr.get("status") == "paired":
            rule = w(f"rule:{pr.get('source')}", lang) if f"rule:{pr.get('source')}" in _RULES else str(pr.get("source"))
            if pr.get("sheet_file"):
                rule += f" ({pr['sheet_file']})"
            note = f'<div class="unpaired">{E(str(pr["note"]))}</div>' if pr.get("note") else ""
            sample = (f'{E(info.get("sample") or str(pr.get("sheet_id")))}'
                      f'<div class="hint">{E(w("rule", lang))}: {E(rule)}</div>{note}')
        else:
            sample = f'<span class="unpaired">{E(w("unpaired", lang))}</span>'
        state = E(w(p.state, lang)) if p.state in ("queued", "uploading", "delivered", "failed", "superseded") \
            else E(p.state)
        g = prog.get(p.id)
        if g:
            left = (f", {E(w('left', lang))} {_duration(g['left'])}" if g.get("left") is not None else "")
            state += (f'<div class="progress"><progress max="100" value="{g["pct"]}"></progress> '
                      f'{g["pct"]}%{left}</div>')
        err = f'<div class="hint">{E(p.last_error)}</div>' if p.last_error else ""
        parts.append(f'<tr data-package="{E(p.id)}"><td class="mono" title="{E(p.id)}">{fnames or E(p.id)}'
                     f'<div class="hint">{E(p.instrument_id)} · {E(human(p.bytes))}</div></td><td>{sample}</td>'
                     f"<td>{E(_when(info.get('taken_at') or p.created_at, lang))}</td>"
                     f'<td><span class="state {E(p.state)}">{state}</span>{err}</td></tr>')
    if not pkgs:
        parts.append(f'<tr><td colspan="4" class="hint">{E(w("none_yet", lang))}</td></tr>')
    parts.append("</table></section>")
    return "".join(parts)


_RULES = {"rule:picked", "rule:sheet-file", "rule:active-sheet", "rule:none"}


def _duration(s: float) -> str:
    s = int(s)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _attach_card(srv: "LocalServer", lang: str) -> str:
    pkgs = [p for p in srv.store.list_packages(limit=50) if p.kind == "measurement"]
    if not pkgs:
        return ""
    opts = "".join(f'<option value="{E(p.id)}">{E(_label(p, _row_info(srv, p), lang))}</option>' for p in pkgs)
    return (f'<section class="card" id="attach"><h2>{E(w("attach", lang))}</h2><div class="attach-form">'
            f'<label for="attach-parent">{E(w("attach_to", lang))}</label>'
            f'<select id="attach-parent"><option value="">{E(w("attach_pick", lang))}</option>{opts}</select>'
            f'<label for="attach-files">{E(w("attach_files", lang))}</label>'
            '<input id="attach-files" type="file" multiple accept=".txt,.csv,.md,.png,.jpg,.jpeg">'
            f'<button class="btn" type="button" id="attach-go">{E(w("attach_btn", lang))}</button></div></section>')


def render_queue(srv: "LocalServer", lang: str = "en") -> str:
    st = build_status(srv.cfg)
    counts = st.get("packages") or srv.store.counts()
    nonce = secrets.token_urlsafe(16)
    switch = "".join(f'<button type="button" data-lang="{code}" aria-pressed="{str(code == lang).lower()}">'
                     f"{label}</button> " for code, label in (("ja", "日本語"), ("en", "English")))
    parts = [f'<header><h1>labedge <span class="sub">{E(srv.cfg.device_id)} · 127.0.0.1:{srv.port}</span></h1>'
             f'<div class="lang" role="group" aria-label="{E(w("lang", lang))}">{switch}</div></header>'
             '<div id="banner" class="banner toast" role="status" aria-live="polite"></div><main>',
             _status_card(st, lang), _settling_card(st, lang)]
    parts.append(f'<section class="card" id="counts"><h2>{E(w("queue", lang))}</h2><div class="counts">')
    for s in ("queued", "uploading", "delivered", "failed", *(("superseded",) if counts.get("superseded") else ())):
        parts.append(f'<div id="count-{s}"><b>{counts.get(s, 0)}</b>{E(w(s, lang))}</div>')
    parts.append("</div>")
    if counts.get("failed"):
        parts.append(f'<p><button class="btn small" id="retry" type="button">{E(w("retry", lang))}</button></p>')
    parts.append("</section>")
    parts.append(_held_card(srv, st, lang))

    parts.append(f'<section class="card" id="instruments"><h2>{E(w("instruments", lang))}</h2><table>'
                 f"<tr><th>{E(w('instrument', lang))}</th><th>{E(w('template', lang))}</th>"
                 f"<th>{E(w('active', lang))}</th><th></th></tr>")
    for inst in srv.cfg.instruments:
        a = srv.db.active(inst.id)
        act = (f'{E(str(a.values.get("sample.names") or a.id))} <span class="hint">'
               f'({E(_when(a.activated_at, lang))}～)</span>' if a else f'<span class="hint">{E(w("none", lang))}</span>')
        parts.append(f"<tr><td>{E(inst.id)}</td><td>{E(inst.sheet_template)}</td><td>{act}</td>"
                     f'<td><a class="btn small" href="/sheet/{E(inst.id)}">{E(w("open_sheet", lang))}</a></td></tr>')
    parts.append("</table></section>")
    parts.append(_packages_card(srv, st, lang))
    parts.append(_attach_card(srv, lang))
    parts.append("</main>")
    cfg = {"token": srv.token, "lang": lang}
    script = (f'<script type="application/json" id="labedge-config">{json_for_script(cfg)}</script>'
              f'<script nonce="{nonce}">{static_text("queue.js")}</script>')
    return page(f"labedge — {srv.cfg.device_id}", "".join(parts), nonce=nonce, served=True, script=script,
                lang=lang)
