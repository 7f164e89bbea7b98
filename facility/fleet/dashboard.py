"""``labedge fleet serve``: the facility dashboard (read-only), on 127.0.0.1 by default.

Access needs the token in ``[dashboard] token_file`` (made, 0600, on first start): open the URL
the command prints (``/login#token=...``: the token is in the fragment, so it never reaches a log
or a proxy), or send ``Authorization: Bearer <token>``. The login sets an HttpOnly, SameSite=Strict
cookie. Behind a reverse proxy, terminate TLS there and keep the token (docs/facility.md).

Pages take every device string from JSON and render it with textContent only: a device id, a
problem text or a sample name is hostile input. The state is colour AND symbol AND word.
"""
from __future__ import annotations

import hmac
import json
import logging
import os
import re
import secrets
import signal
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from facility.fleet.admin_link import FleetWatcher
from facility.fleet.data import FleetData
from facility.fleet.i18n import pick_language, strings
from facility.fleet_config import FleetConfig
from wire.protocol import DEVICE_RE

log = logging.getLogger(__name__)

COOKIE = "labedge_fleet"
MAX_BODY = 4096
STATIC = {"fleet.js": "text/javascript; charset=utf-8", "fleet.css": "text/css; charset=utf-8"}


def read_or_make_token(path: Path) -> str:
    """The dashboard token; made (owner-only) when the file is missing. Short or empty files are refused."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        token = secrets.token_urlsafe(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(token + "\n")
        return token
    if len(token) < 16:
        from config.validation import ConfigError
        raise ConfigError(f"{path}: the dashboard token must be at least 16 characters")
    return token


def _static(name: str) -> bytes:
    return resources.files("facility.fleet").joinpath(f"static/{name}").read_bytes()


class Dashboard:
    def __init__(self, cfg: FleetConfig, *, watcher: FleetWatcher | None = None) -> None:
        self.cfg = cfg
        self.token = read_or_make_token(cfg.token_file)
        self.watcher = watcher or FleetWatcher(cfg)
        self.data = FleetData(cfg)
        self._data_lock = threading.Lock()   # one catalog connection, many request threads

    def fleet(self) -> dict[str, Any]:
        with self._data_lock:
            lines = self.data.lines(self.watcher.statuses())
            note = self.data.catalog_note
        return {"generated_at": time.time(), "broker_connected": self.watcher.connected,
                "broker_error": self.watcher.why_disconnected,
                "catalog_note": note, "devices": [d.as_dict() for d in lines]}

    def device(self, device: str) -> dict[str, Any] | None:
        statuses = self.watcher.statuses()
        with self._data_lock:
            lines = {d.device: d for d in self.data.lines(statuses)}
            if device not in lines:
                return None
            # the newest document: the broker's while online, else what the catalog kept of it
            doc = self.data.docs(statuses).get(device) or statuses.get(device, ({}, None))[0]
            detail = self.data.device_detail(device, doc)
        return {"generated_at": time.time(), "line": lines[device].as_dict(), "status": doc, **detail}

    def config(self) -> dict[str, Any]:
        with self._data_lock:
            view = self.data.config_view(self.watcher.statuses())
            note = self.data.catalog_note
        return {"generated_at": time.time(), "catalog_note": note, **view}

    def authorised(self, h: BaseHTTPRequestHandler) -> bool:
        auth = h.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].strip().encode(), self.token.encode()):
            return True
        for part in h.headers.get("Cookie", "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == COOKIE and hmac.compare_digest(v.encode(), self.token.encode()):
                return True
        return False


def make_handler(dash: Dashboard) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "labedge-fleet"
        sys_version = ""

        def log_message(self, fmt: str, *args: Any) -> None:  # noqa: D102 - to our log, never stderr spam
            log.debug("%s %s", self.address_string(), fmt % args)

        def _send(self, code: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("X-Frame-Options", "DENY")
            self.send_header("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; "
                             "form-action 'self'; base-uri 'none'")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the browser went elsewhere before the answer was complete

        def _json(self, obj: Any, code: int = 200) -> None:
            self._send(code, json.dumps(obj, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

        def _page(self, kind: str, device: str | None = None) -> None:
            q = parse_qs(urlparse(self.path).query)
            lang = pick_language(q.get("lang", [None])[0], self.headers.get("Accept-Language"))
            s = strings(lang)
            boot = json.dumps({"page": kind, "device": device, "lang": lang, "t": s}, ensure_ascii=False)
            boot = boot.replace("<", "\\u003c")  # never closes the script element, whatever a string holds
            title = {"device": f"{s['device']} {device}", "config": f"{s['configuration']} · {s['title']}"}.get(
                kind, s["title"])
            html = (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
                    f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                    f'<title>{_esc(title)}</title><link rel="stylesheet" href="/static/fleet.css"></head>'
                    f'<body><script type="application/json" id="boot">{boot}</script>'
                    f'<main id="app" aria-live="polite"></main><script src="/static/fleet.js"></script></body></html>')
            self._send(200, html.encode("utf-8"), "text/html; charset=utf-8")

        def do_HEAD(self) -> None:  # noqa: N802
            self.do_GET()

        def do_GET(self) -> None:  # noqa: N802
            path = urlparse(self.path).path
            if path.startswith("/static/") and path[8:] in STATIC:
                return self._send(200, _static(path[8:]), STATIC[path[8:]])
            if path == "/login":
                return self._page("login")
            if not dash.authorised(self):
                if path.startswith("/api/"):
                    return self._json({"error": "a token is needed (see labedge fleet serve's output)"}, 401)
                return self._send(303, b"", "text/plain", {"Location": "/login"})
            if path == "/":
                return self._page("fleet")
            if path == "/api/fleet":
                return self._json(dash.fleet())
            if path == "/config":
                return self._page("config")
            if path == "/api/config":
                return self._json(dash.config())
            m = re.fullmatch(r"/(api/)?device/([^/]+)", path)
            if m and DEVICE_RE.match(m.group(2)):
                if m.group(1):
                    d = dash.device(m.group(2))
                    return self._json(d) if d is not None else self._json({"error": "unknown device"}, 404)
                return self._page("device", m.group(2))
            return self._send(404, b"not found", "text/plain; charset=utf-8")

        def do_POST(self) -> None:  # noqa: N802
            if urlparse(self.path).path != "/login":
                return self._send(405, b"", "text/plain")
            origin = self.headers.get("Origin")
            host = self.headers.get("Host", "")
            if origin and urlparse(origin).netloc != host:
                return self._json({"error": "login from another site refused"}, 403)
            n = int(self.headers.get("Content-Length") or 0)
            if n > MAX_BODY:
                return self._json({"error": "too large"}, 413)
            try:
                token = json.loads(self.rfile.read(n) or b"{}").get("token", "")
            except (ValueError, AttributeError):
                token = ""
            if not isinstance(token, str) or not hmac.compare_digest(token.strip().encode(), dash.token.encode()):
                time.sleep(0.5)  # a guess costs time
                return self._json({"error": "wrong token"}, 403)
            cookie = f"{COOKIE}={dash.token}; HttpOnly; SameSite=Strict; Path=/"
            if self.headers.get("X-Forwarded-Proto") == "https":
                cookie += "; Secure"
            return self._send(204, b"", "text/plain", {"Set-Cookie": cookie})

    return Handler


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


class DashboardServer:
    """The dashboard on its own threads (tests and ``serve`` use this)."""

    def __init__(self, cfg: FleetConfig, host: str | None = None, port: int | None = None) -> None:
        self.dash = Dashboard(cfg)
        self.httpd = ThreadingHTTPServer((host or cfg.dashboard.host, cfg.dashboard.port if port is None else port),
                                         make_handler(self.dash))
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="fleet-dashboard", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "DashboardServer":
        self.dash.watcher.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.dash.watcher.stop()
        self.dash.data.close()


def serve(cfg: FleetConfig, host: str | None = None, port: int | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        srv = DashboardServer(cfg, host, port)
    except OSError as exc:
        print(f"labedge fleet serve: cannot listen on {host or cfg.dashboard.host}:{port or cfg.dashboard.port}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    srv.start()
    print(f"fleet dashboard: {srv.url}/login#token={srv.dash.token}", flush=True)
    print(f"(the token is in {cfg.token_file}; the page updates itself, no reload needed)", flush=True)
    stop.wait()
    srv.stop()
    return 0
