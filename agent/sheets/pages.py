"""The queue page (``/``) and its JSON twin (``/api/status``).

Server-rendered; every value from the state (file names, sample names, errors) goes through
``html.escape``, so a file called ``<script>...`` is shown as text. The small script only posts
actions (pause, pick a sheet, attach files, retry) with the token.
"""
from __future__ import annotations

import datetime as dt
import html
import secrets
from typing import TYPE_CHECKING, Any

from agent.intake import human
from agent.sheets.html import json_for_script, page, static_text
from agent.status import build_status

if TYPE_CHECKING:
    from agent.sheets.server import LocalServer

E = html.escape
STATE_LABEL = {"queued": "待機中 / waiting", "uploading": "送信中 / uploading",
               "delivered": "送信済 / delivered", "failed": "失敗 / failed"}


def _when(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%m-%d %H:%M:%S") if t else ""


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def status_data(srv: "LocalServer") -> dict[str, Any]:
    pk = srv.store.list_packages(limit=50)
    return {
        "device_id": srv.cfg.device_id,
        "packages": srv.store.counts(),
        "recent": [{"id": p.id, "instrument_id": p.instrument_id, "kind": p.kind, "parent_id": p.parent_id,
                    "state": p.state, "bytes": p.bytes, "n_files": p.n_files, "created_at": p.created_at,
                    "error": p.last_error} for p in pk],
        "held": [h.summary() for h in srv.db.holds(limit=100)],
        "active": {i.id: (s.summary() if (s := srv.db.active(i.id)) else None) for i in srv.cfg.instruments},
    }


def status_lines(st: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, text) for the status card: what the tray says, in full, with the reason for each."""
    out: list[tuple[str, str]] = []
    if st.get("control", {}).get("paused"):
        out.append(("warning", "一時停止中 / Paused by the user: new measurements wait until you resume."))
    if st.get("intake", {}).get("paused"):
        out.append(("warning", f"受付停止 / Not taking new measurements: {st['intake']['reason']}"))
    up = st.get("upload") if isinstance(st.get("upload"), dict) else None
    if st.get("offline"):
        out.append(("info", "オフライン / Offline: no [upload] is configured, packages are kept on this PC."))
    elif up is not None and up.get("connected") is False:
        out.append(("warning", "ブローカー未接続 / Not connected to the broker: "
                    f"{up.get('last_error') or 'trying again'}. Packages wait here."))
    cert = st.get("certificate")
    if isinstance(cert, dict) and cert.get("warning"):
        out.append(("warning", f"証明書 / Certificate: {cert['warning']}"))
    for pr in st.get("problems", []):
        out.append((str(pr.get("kind", "error")), str(pr.get("message", ""))))
    if st.get("measurements_waiting"):
        out.append(("info", f"計測待ち {st['measurements_waiting']} 件 / {st['measurements_waiting']} measurement(s) "
                    "not yet packaged (settling, paused or waiting for a sheet)."))
    if not out:
        out.append(("ok", "問題ありません / All well."))
    from agent.remote.report import page_lines  # keys the facility set, and which version set them
    return out + page_lines(st.get("remote"))


def _status_card(srv: "LocalServer") -> str:
    st = build_status(srv.cfg)
    paused = bool(st.get("control", {}).get("paused"))
    rows = "".join(f'<li class="{E(kind)}">{E(text)}</li>' for kind, text in status_lines(st))
    button = (f'<button class="btn small" id="pause" type="button" data-paused="{int(not paused)}">'
              + ("再開 / Resume" if paused else "一時停止 / Pause") + "</button>")
    return f'<section class="card" id="status"><h2>状態 / Status</h2><ul class="status">{rows}</ul>{button}</section>'


def render_queue(srv: "LocalServer") -> str:
    counts = srv.store.counts()
    holds = srv.db.holds(limit=100)
    recent_sheets = srv.db.recent(limit=15)
    pkgs = srv.store.list_packages(limit=50)
    nonce = secrets.token_urlsafe(16)
    parts = [f'<header><h1>labedge <span class="sub">{E(srv.cfg.device_id)} · 127.0.0.1:{srv.port}</span></h1>'
             '</header><main><div id="banner" class="banner" role="status"></div>', _status_card(srv)]
    parts.append('<section class="card"><h2>キュー / Queue</h2><div class="counts">')
    for s in ("queued", "uploading", "delivered", "failed"):
        parts.append(f'<div id="count-{s}"><b>{counts.get(s, 0)}</b>{E(STATE_LABEL[s])}</div>')
    parts.append("</div>")
    if counts.get("failed"):
        parts.append('<p><button class="btn small" id="retry" type="button">失敗分を再送 / Retry failed</button></p>')
    parts.append("</section>")

    parts.append('<section class="card" id="instruments"><h2>装置とシート / Instruments and sheets</h2><table>'
                 "<tr><th>装置 / Instrument</th><th>テンプレート / Template</th><th>有効なシート / Active sheet</th>"
                 "<th></th></tr>")
    for inst in srv.cfg.instruments:
        a = srv.db.active(inst.id)
        act = (f'{E(str(a.values.get("sample.names") or a.id))} <span class="hint">({E(_when(a.activated_at))}～)</span>'
               if a else '<span class="hint">なし / none</span>')
        parts.append(f"<tr><td>{E(inst.id)}</td><td>{E(inst.template)}</td><td>{act}</td>"
                     f'<td><a class="btn small" href="/sheet/{E(inst.id)}">シートを開く / Open sheet</a></td></tr>')
    parts.append("</table></section>")

    parts.append(f'<section class="card" id="held"><h2>シート待ち / Needs a sheet ({len(holds)})</h2>')
    if not holds:
        parts.append('<p class="hint">ありません / None.</p>')
    else:
        opts = "".join(f'<option value="{E(s.id)}">{E(_short(str(s.values.get("sample.names") or s.id)))} '
                       f'({E(s.template)}, {E(_when(s.created_at))})</option>' for s in recent_sheets)
        parts.append("<table><tr><th>装置 / Instrument</th><th>データ / Measurement</th><th>待機開始 / Since</th>"
                     "<th>操作 / Actions</th></tr>")
        for h in holds:
            rels = h.summary()["files"]
            files = ", ".join(rels[:5]) + (" …" if len(rels) > 5 else "") if rels != [h.measurement.name] else ""
            pick = (f'<select data-pick-for="{E(h.fingerprint)}"><option value="">シートを選ぶ / pick a sheet</option>'
                    f'{opts}</select> <button class="btn small" type="button" data-pick="{E(h.fingerprint)}">'
                    "適用 / Apply</button>") if recent_sheets else ""
            parts.append(f'<tr data-hold="{E(h.fingerprint)}"><td>{E(h.instrument_id)}</td>'
                         f'<td>{E(h.measurement.name)}<div class="hint mono">{E(files)}</div></td>'
                         f"<td>{E(_when(h.held_at))}</td>"
                         f'<td><a class="btn small" href="/sheet/{E(h.instrument_id)}?hold={E(h.fingerprint)}">'
                         f"記入 / Fill sheet</a> {pick}</td></tr>")
        parts.append("</table>")
    parts.append("</section>")

    parts.append('<section class="card" id="packages"><h2>パッケージ / Packages</h2><table>'
                 "<tr><th>ID</th><th>装置 / Instrument</th><th>状態 / State</th><th>大きさ / Size</th>"
                 "<th>添付 / Attach</th></tr>")
    for p in pkgs:
        kind = "" if p.kind == "measurement" else f' <span class="hint">({E(p.kind)} → {E(p.parent_id or "")})</span>'
        err = f'<div class="hint">{E(p.last_error)}</div>' if p.last_error else ""
        att = (f'<input type="file" multiple accept=".txt,.csv,.md,.png,.jpg,.jpeg" data-attach-input="{E(p.id)}"> '
               f'<button class="btn small" type="button" data-attach="{E(p.id)}">添付 / Attach</button>'
               if p.kind == "measurement" else "")
        parts.append(f'<tr data-package="{E(p.id)}"><td class="mono">{E(p.id)}{kind}</td><td>{E(p.instrument_id)}</td>'
                     f'<td><span class="state {E(p.state)}">{E(STATE_LABEL.get(p.state, p.state))}</span>{err}</td>'
                     f"<td>{E(human(p.bytes))} · {p.n_files}</td><td>{att}</td></tr>")
    if not pkgs:
        parts.append('<tr><td colspan="5" class="hint">まだありません / None yet.</td></tr>')
    parts.append("</table></section></main>")
    cfg = {"token": srv.token}
    script = (f'<script type="application/json" id="labedge-config">{json_for_script(cfg)}</script>'
              f'<script nonce="{nonce}">{static_text("queue.js")}</script>')
    return page(f"labedge — {srv.cfg.device_id}", "".join(parts), nonce=nonce, served=True, script=script)
