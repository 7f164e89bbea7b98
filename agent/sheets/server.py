"""The agent's local page on 127.0.0.1 only: the queue, the sheet per instrument, JSON endpoints.

Other local web pages must not be able to drive it: every request's Host must be our own
loopback name and port (DNS rebinding), every POST needs the per-install token (embedded only in
pages we serve, which other origins cannot read), a same-origin Origin if the browser sends one,
and a JSON body within a size limit. Values from requests are data only, never paths.
"""
from __future__ import annotations

import base64
import binascii
import errno
import hmac
import json
import logging
import os
import re
import secrets
import socket
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from agent.config import Config
from agent.health import Health
from agent.package.builder import Spool
from agent.portowner import port_in_use_message
from agent.sheets import pages
from agent.sheets.bounded_http import BoundedThreadingHTTPServer
from agent.sheets import official
from agent.sheets.attachments import AttachmentRefused, Upload, attach
from agent.sheets.derive import measured_values
from agent.sheets.form import SheetInvalid, form_model, validate_values
from agent.sheets.html import render_sheet
from agent.sheets.i18n import both, pick_lang
from agent.sheets.invoice import new_sheet_id
from agent.sheets.pairer import choices_of
from agent.sheets.sheetdb import SheetDB
from agent.sheets.templates import TemplateError, load_template
from agent.state.store import StateStore
from agent.threads import Worker

log = logging.getLogger(__name__)
TOKEN_FILE = "web-token"
MAX_JSON_BYTES = 256 * 1024
MAX_ATTACH_BYTES = 60 * 1024 * 1024   # base64 of the attachment limit, plus room
_HOLD_RE = re.compile(r"^[0-9a-f]{32}$")


def load_token(state_dir: Path) -> str:
    """The per-install POST token, created once, readable by this user only."""
    path = Path(state_dir) / TOKEN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    except FileExistsError:
        token = path.read_text(encoding="ascii").strip()
        if re.fullmatch(r"[A-Za-z0-9_-]{32,128}", token):
            return token
        path.unlink()  # damaged: make a new one (pages already open must be reloaded)
        return load_token(state_dir)
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(token)
    return token


class Refused(Exception):
    """A refusal; ``message`` is plain English or ``{"en": ..., "ja": ...}`` (agent.sheets.i18n.both)."""

    def __init__(self, status: int, message: str | dict[str, str], errors: dict | None = None) -> None:
        super().__init__(message if isinstance(message, str) else message["en"])
        self.status, self.errors = status, errors
        self.message = message if isinstance(message, dict) else {"en": message, "ja": message}


class _HTTPServer(BoundedThreadingHTTPServer):  # bounded connections and time-outs (security 7)
    daemon_threads = True
    # POSIX SO_REUSEADDR only lets us bind over our own old connections in TIME_WAIT (a restart
    # would otherwise wait ~60 s); it never lets two sockets listen at once. On Windows it would,
    # so there the port is held exclusively instead (agent.portowner names who holds it).
    allow_reuse_address = sys.platform != "win32"

    def server_bind(self) -> None:
        if sys.platform == "win32":  # pragma: no cover - Windows only
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        super().server_bind()


class LocalServer(Worker):
    def __init__(self, cfg: Config, store: StateStore, health: Health, pairer: Any, spool: Spool,
                 pipeline: Any = None) -> None:
        super().__init__("local-page")
        self.cfg, self.store, self.health, self.pairer, self.spool, self.pipeline = \
            cfg, store, health, pairer, spool, pipeline
        self.db = SheetDB(store)
        official.use_root(cfg.rde_templates_dir)  # an instrument's rde_template names its sheet
        self.choices = choices_of(cfg)
        self.token = load_token(cfg.state_dir)
        self.httpd: _HTTPServer | None = None
        self.port: int | None = None
        self._bind()

    def _bind(self) -> None:
        try:
            self.httpd = _HTTPServer(("127.0.0.1", self.cfg.web.port), _handler_for(self))
        except OSError as exc:
            msg = (port_in_use_message(self.cfg.web.port) if exc.errno in (errno.EADDRINUSE, errno.EACCES, 10048)
                   else f"local page: cannot listen on 127.0.0.1:{self.cfg.web.port} ({exc.strerror or exc})")
            log.error("%s", msg)
            self.health.problem("web", msg, kind="error")
            return
        self.httpd.timeout = 0.25
        self.port = self.httpd.server_address[1]
        self.origins = {f"http://127.0.0.1:{self.port}", f"http://localhost:{self.port}"}
        self.hosts = {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}
        self.health.clear_problem("web")
        self.health.set("web_port", self.port)
        self.health.set("web_url", f"http://127.0.0.1:{self.port}/")
        log.info("local page on http://127.0.0.1:%d/", self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def loop_once(self) -> None:
        if self.httpd is None:
            if not self.wait(30.0):
                self._bind()
            return
        self.httpd.handle_request()  # returns after at most `timeout`, so stop() is noticed

    def run(self) -> None:
        try:
            super().run()
        finally:
            if self.httpd is not None:
                self.httpd.server_close()

    # -- checks ------------------------------------------------------------------------------
    def check_request(self, h: BaseHTTPRequestHandler, *, post: bool) -> None:
        host = h.headers.get("Host", "")
        if host not in self.hosts:
            raise Refused(421, f"requests must be addressed to 127.0.0.1:{self.port} (got Host {host[:80]!r})")
        if not post:
            return
        origin = h.headers.get("Origin")
        if origin is not None and origin not in self.origins:
            raise Refused(403, f"requests from other web pages are refused (Origin {origin[:80]!r})")
        site = h.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            raise Refused(403, f"requests from other web pages are refused (Sec-Fetch-Site {site[:20]!r})")
        token = h.headers.get("X-Labedge-Token", "")
        if not hmac.compare_digest(token.encode("utf-8", "replace"), self.token.encode()):
            raise Refused(403, both("missing or wrong token: reload the page from the agent (labedge status shows "
                                    "its address)", "トークンがありません。エージェントのページを開き直してください"))
        if h.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            raise Refused(415, "the body must be JSON (Content-Type: application/json)")

    def read_json(self, h: BaseHTTPRequestHandler, limit: int) -> dict[str, Any]:
        try:
            n = int(h.headers.get("Content-Length", ""))
        except ValueError:
            raise Refused(411, "Content-Length is required") from None
        if n < 0 or n > limit:
            raise Refused(413, f"request too large ({n} bytes; at most {limit})")
        try:
            obj = json.loads(h.rfile.read(n).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise Refused(400, "the body is not UTF-8 JSON") from None
        if not isinstance(obj, dict):
            raise Refused(400, "the body must be a JSON object")
        return obj

    def instrument(self, iid: Any):  # -> InstrumentConfig
        if isinstance(iid, str):
            for inst in self.cfg.instruments:
                if inst.id == iid:
                    return inst
        raise Refused(404, f"no instrument {str(iid)[:64]!r} in this agent's config")

    # -- actions -----------------------------------------------------------------------------
    def get(self, path: str, query: dict[str, list[str]], lang: str = "en") -> tuple[int, str, str]:
        if path == "/":
            return 200, "text/html; charset=utf-8", pages.render_queue(self, lang)
        if path.startswith("/sheet/"):
            inst = self.instrument(path[len("/sheet/"):])
            hold, derived = None, None
            fp = (query.get("hold") or [""])[0]
            if fp:
                h = self.db.hold(fp) if _HOLD_RE.match(fp) else None
                if h is None or h.state != "held":
                    raise Refused(404, both("that measurement is no longer waiting for a sheet",
                                            "そのデータはもうシートを待っていません"))
                hold = {"id": fp, "name": h.measurement.name}
                derived = measured_values(h.measurement)  # this measurement's date, prefilled
            active = self.db.active(inst.id)
            try:
                body = render_sheet(inst.sheet_template, mode="served", instrument_id=inst.id, token=self.token,
                                    choices=self.choices, prefill=active.values if active else None,
                                    active=active.summary() if active else None, hold=hold, back_link=True,
                                    derived=derived)
            except TemplateError as exc:
                raise Refused(500, f"instrument {inst.id}: {exc}") from None
            return 200, "text/html; charset=utf-8", body
        if path == "/api/status":
            return 200, "application/json", json.dumps(pages.status_data(self), ensure_ascii=False)
        if path == "/favicon.ico":
            return 204, "text/plain", ""
        raise Refused(404, "no such page")

    def post(self, path: str, h: BaseHTTPRequestHandler) -> dict[str, Any]:
        body = self.read_json(h, MAX_ATTACH_BYTES if path == "/api/attach" else MAX_JSON_BYTES)
        if path == "/api/sheet":
            return self.post_sheet(body)
        if path == "/api/sheet/close":
            inst = self.instrument(body.get("instrument_id"))
            n = self.db.close_active(inst.id)
            return {"ok": True, "closed": n}
        if path == "/api/hold/pick":
            fp, sid = body.get("hold"), body.get("sheet_id")
            if isinstance(fp, str) and _HOLD_RE.match(fp) and isinstance(sid, str) and len(sid) <= 100:
                self.check_template(fp, sid, confirmed=body.get("confirm") is True)
            if not (isinstance(fp, str) and _HOLD_RE.match(fp) and isinstance(sid, str) and len(sid) <= 100
                    and hasattr(self.pairer, "assign") and self.pairer.assign(fp, sid)):
                raise Refused(404, both("that measurement is no longer waiting, or the sheet is unknown",
                                        "そのデータはもう待っていないか、シートが見つかりません"))
            return {"ok": True}
        if path == "/api/attach":
            return self.post_attach(body)
        if path == "/api/retry":
            return {"ok": True, "requeued": self.store.retry_failed()}
        if path == "/api/pause":
            paused = body.get("paused")
            if not isinstance(paused, bool):
                raise Refused(400, "paused must be true or false")
            self.store.set_control(paused=paused, paused_by="user", pause_reason=None)  # the agent polls it, as it does for the tray's Pause
            log.info("collection %s from the local page", "paused" if paused else "resumed")
            return {"ok": True, "paused": paused}
        raise Refused(404, "no such endpoint")

    def check_template(self, fp: str, sheet_id: str, *, confirmed: bool) -> None:
        """A sheet of another instrument's template (an XRD sheet for a FIB image) is refused unless the
        user confirms it with the mismatch named."""
        h, sheet = self.db.hold(fp), self.db.sheet(sheet_id)
        if h is None or sheet is None or confirmed:
            return
        try:
            want = self.cfg.instrument(h.instrument_id).sheet_template
        except KeyError:
            return
        if sheet.template != want:
            raise Refused(409, both(f"this sheet is for the {sheet.template!r} template, but {h.instrument_id} "
                                    f"({h.measurement.name}) uses {want!r}",
                                    f"このシートは {sheet.template!r} 用ですが、{h.instrument_id}（{h.measurement.name}）"
                                    f"は {want!r} を使います"),
                          errors={"mismatch": {"sheet": sheet.template, "instrument": want}})

    def post_sheet(self, body: dict[str, Any]) -> dict[str, Any]:
        inst = self.instrument(body.get("instrument_id"))
        name = inst.sheet_template
        try:
            values = validate_values(form_model(name, load_template(name), self.choices), body.get("values"))
        except SheetInvalid as exc:
            raise Refused(400, both("some fields need attention", "項目を確認してください"), errors=exc.errors) from None
        except TemplateError as exc:
            raise Refused(500, f"instrument {inst.id}: {exc}") from None
        fp = body.get("hold")
        if fp is not None and not (isinstance(fp, str) and _HOLD_RE.match(fp)):
            raise Refused(400, "hold must be the id of a waiting measurement")
        sid = new_sheet_id()
        self.db.save_sheet(sid, name, values, source="web", instrument_id=inst.id)
        if fp:
            if not (hasattr(self.pairer, "assign") and self.pairer.assign(fp, sid)):
                raise Refused(404, "that measurement is no longer waiting for a sheet (the sheet was saved)")
        else:
            self.db.activate(inst.id, sid)
        log.info("sheet %s saved for %s%s", sid, inst.id, f" (held measurement {fp})" if fp else " (active)")
        return {"ok": True, "sheet_id": sid}

    def post_attach(self, body: dict[str, Any]) -> dict[str, Any]:
        files = body.get("files")
        if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
            raise Refused(400, "files must be a list of {name, data}")
        uploads = []
        for f in files:
            name, data = f.get("name"), f.get("data")
            if not isinstance(name, str) or not isinstance(data, str):
                raise Refused(400, "each file needs a name and base64 data")
            try:
                uploads.append(Upload(name, base64.b64decode(data, validate=True)))
            except (binascii.Error, ValueError):
                raise Refused(400, f"{name[:80]!r}: data is not base64") from None
        gate = getattr(self.pipeline, "gate", None)
        reason = gate.blocked_reason(sum(len(u.data) for u in uploads)) if gate is not None else None
        if reason:
            raise Refused(507, both(f"not taken now: {reason}", f"今は受け付けられません: {reason}"))
        try:
            built = attach(self.cfg, self.store, self.spool, body.get("parent_id"), uploads)
        except AttachmentRefused as exc:
            raise Refused(400, both(str(exc), exc.ja)) from None
        for cb in getattr(self.pipeline, "on_packaged", []):
            _notify(cb, built)
        return {"ok": True, "package_id": built.id}


def _notify(cb: Any, built: Any) -> None:
    """Tell the runner (wake the uploader); its callback expects a measurement, give a stand-in."""
    from agent.measurement import Measurement
    try:
        cb(Measurement(instrument_id="", key="attachment", files=[], settled_at=0.0, watch_root=Path(".")), built)
    except Exception:  # noqa: BLE001 - a failed wake-up only delays the upload to the next poll
        log.exception("after attaching %s", built.id)


def _handler_for(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "labedge"
        sys_version = ""

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("local page: " + fmt, *args)

        def _send(self, status: int, ctype: str, body: str) -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("X-Frame-Options", "DENY")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
            if ctype.startswith("text/html"):
                self.send_header("Content-Security-Policy", "frame-ancestors 'none'")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _fail(self, exc: Refused) -> None:
            out: dict[str, Any] = {"ok": False, "message": exc.message}
            if exc.errors:
                out["errors"] = exc.errors
            self._send(exc.status, "application/json", json.dumps(out, ensure_ascii=False))

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            try:
                server.check_request(self, post=False)
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                status, ctype, body = server.get(parts.path, query, pick_lang(self.headers, query))
                self._send(status, ctype, body)
            except Refused as exc:
                self._fail(exc)
            except Exception:  # noqa: BLE001 - never a traceback to the browser
                log.exception("local page GET %s failed", self.path[:200])
                self._fail(Refused(500, "internal error; see the agent's log"))

        def do_POST(self) -> None:  # noqa: N802
            try:
                server.check_request(self, post=True)
                out = server.post(urlsplit(self.path).path, self)
                self._send(200, "application/json", json.dumps(out, ensure_ascii=False))
            except Refused as exc:
                self._fail(exc)
            except Exception:  # noqa: BLE001
                log.exception("local page POST %s failed", self.path[:200])
                self._fail(Refused(500, "internal error; see the agent's log"))

    return Handler

