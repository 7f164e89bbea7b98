"""Render one template to ONE self-contained HTML page (inline CSS and JS, no network).

The same page works opened from ``file://`` (it saves ``<name>.sheet.json``) and served by the
agent on 127.0.0.1 (it posts to ``/api/sheet`` with the per-install token). Everything the page
needs (the form model, choices, prefill) is embedded as JSON inside a
``<script type="application/json">`` element, escaped so no value can close the element, and a
Content-Security-Policy with a fresh nonce allows only our own inline script and style.
"""
from __future__ import annotations

import html
import json
import secrets
from importlib import resources
from typing import Any

from agent.sheets.form import fields_of, form_model
from agent.sheets.templates import load_template


def static_text(name: str) -> str:
    return resources.files("agent.sheets").joinpath("static", name).read_text("utf-8")


def json_for_script(obj: Any) -> str:
    """JSON safe inside a <script> element: no '<', '>', '&' or line separators appear raw."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def csp(nonce: str, *, served: bool) -> str:
    connect = "'self'" if served else "'none'"
    return (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src data:; "
            f"connect-src {connect}; form-action 'none'; base-uri 'none'; frame-ancestors 'none'")


def page(title: str, body: str, *, nonce: str, served: bool, script: str = "", lang: str = "ja") -> str:
    """The common page shell; ``body`` and ``script`` are trusted markup built by us."""
    return (
        "<!doctype html>\n"
        f'<html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{html.escape(csp(nonce, served=served))}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{html.escape(title)}</title>"
        f'<style nonce="{nonce}">{static_text("sheet.css")}</style></head>\n'
        f"<body>{body}{script}</body></html>\n"
    )


def render_sheet(name: str, *, mode: str = "file", instrument_id: str | None = None, token: str | None = None,
                 choices: dict[str, list[dict[str, str]]] | None = None, prefill: dict[str, Any] | None = None,
                 active: dict[str, Any] | None = None, hold: dict[str, str] | None = None,
                 back_link: bool = False, derived: dict[str, Any] | None = None) -> str:
    """The sheet page for template ``name``; ``mode`` "file" (saves JSON) or "served" (posts)."""
    if mode not in ("file", "served"):
        raise ValueError(f"mode must be 'file' or 'served', not {mode!r}")
    schema = load_template(name)
    model = form_model(name, schema, choices)
    for f in fields_of(model).values():  # what the measurement gives, prefilled (the user may change it)
        key = f["id"].removeprefix("custom.")
        if f["id"].startswith("custom.") and key in (derived or {}) and "const" not in f:
            f["default"] = derived[key]
    cfg = {"model": model, "mode": mode, "instrument": instrument_id, "token": token if mode == "served" else None,
           "prefill": prefill or {}, "active": active, "hold": hold}
    nonce = secrets.token_urlsafe(16)
    back = '<a class="btn small" id="back" href="/">←</a>' if back_link else ""
    body = (
        '<header><h1><span id="title"></span><span class="sub" id="subtitle"></span></h1>'
        f'{back}<div class="lang" role="group" aria-label="language">'
        '<button type="button" data-lang="ja">日本語</button> <button type="button" data-lang="en">English</button>'
        '</div></header><main>'
        '<div id="info" class="banner"></div><div id="banner" class="banner" role="status"></div>'
        '<form id="sheet" novalidate autocomplete="off"></form>'
        '<noscript><p class="banner bad">このページには JavaScript が必要です / This page needs JavaScript.</p></noscript>'
        "</main>"
    )
    script = (f'<script type="application/json" id="labedge-config">{json_for_script(cfg)}</script>'
              f'<script nonce="{nonce}">{static_text("sheet.js")}</script>')
    title = f"{model['title']['ja']} / {model['title']['en']}" if model["title"]["ja"] != model["title"]["en"] \
        else model["title"]["en"]
    return page(f"labedge: {title}", body, nonce=nonce, served=mode == "served", script=script)
