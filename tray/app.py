"""The tray icon process (`labedge tray`): shows the agent's state, opens the local page, pause/retry.

It is a separate process from the agent so a desktop session that ends (or a broken display
stack) never stops data collection. It talks to the agent only through the state DB.
"""
from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
import webbrowser
from pathlib import Path
from typing import Any, Callable

from agent.config import Config
from agent.state.store import StateStore
from agent.summary import user_language
from tray.icons import icon_image
from tray.source import StatusSource, source_for
from tray.state import ERROR, TrayState, tray_state

log = logging.getLogger(__name__)


class TrayController:
    """Everything the menu does, without pystray, so it is testable anywhere."""

    def __init__(self, cfg: Config, opener: Callable[[str], Any] = webbrowser.open, lang: str | None = None,
                 source: StatusSource | None = None) -> None:
        self.cfg = cfg
        self.opener = opener
        self.lang = lang or user_language()
        self._held_seen: set[str] | None = None
        self.source = source or source_for(cfg)  # machine-wide mode: the service's status file

    def status(self) -> dict[str, Any]:
        return self.source.status()

    def state(self, st: dict[str, Any] | None = None) -> TrayState:
        return tray_state(self.status() if st is None else st, self.lang)

    def sheet_notice(self, st: dict[str, Any]) -> str | None:
        """The desktop notification to raise when a measurement newly needs a sheet (None: nothing new).
        The first status read only records what is held, so a restart of the tray does not re-announce."""
        sh = st.get("sheets") if isinstance(st.get("sheets"), dict) else {}
        held = {str(h.get("hold")): h for h in sh.get("held_list") or [] if isinstance(h, dict)}
        new = [h for k, h in held.items() if self._held_seen is not None and k not in self._held_seen]
        self._held_seen = set(held)
        if not new:
            return None
        return self.state(st).title + (" — ページでシートを記入してください" if self.lang == "ja"
                                       else " — fill a sheet on the local page")

    def data_folder(self) -> Path:
        """The first watched folder: where the instrument writes what labedge collects."""
        for inst in self.cfg.instruments:
            for w in inst.watch:
                return Path(w)
        return Path(self.cfg.spool_dir)

    def open_data_folder(self) -> None:
        self._open_folder(self.data_folder())

    def page_url(self) -> str:
        port = self.status().get("facts", {}).get("web_port") or self.cfg.web.port
        return f"http://127.0.0.1:{port}/"

    def open_page(self) -> None:
        self.opener(self.page_url())

    def _store(self) -> StateStore:
        return StateStore(self.cfg.state_db)

    def set_paused(self, paused: bool) -> None:
        store = self._store()
        try:
            store.set_control(paused=paused, paused_by="user", pause_reason=None)
        finally:
            store.close()

    def is_paused(self) -> bool:
        # from the status (its "control" section), so machine-wide the tray never opens the service's DB
        return bool((self.status().get("control") or {}).get("paused"))

    def retry_now(self) -> None:
        store = self._store()
        try:
            store.set_control(retry_requested_at=time.time())
        finally:
            store.close()

    def open_logs(self) -> None:
        self._open_folder(Path(self.cfg.log_dir))

    def _open_folder(self, folder: Path) -> None:
        if sys.platform == "win32":
            subprocess.Popen(["explorer", str(folder)])
        else:
            self.opener(folder.resolve().as_uri())


def run_tray(cfg: Config, refresh_seconds: float = 2.0) -> int:  # pragma: no cover - needs a desktop
    import pystray

    ctl = TrayController(cfg)
    ja = ctl.lang == "ja"
    st0 = ctl.status()
    ctl.sheet_notice(st0)
    state = ctl.state(st0)
    stop = threading.Event()

    def toggle_pause(icon, _item):  # noqa: ANN001
        ctl.set_paused(not ctl.is_paused())
        refresh(icon)

    def quit_tray(icon, _item):  # noqa: ANN001
        stop.set()
        icon.stop()

    menu = pystray.Menu(  # the details the short tooltip leaves out: the reason, then what to do
        pystray.MenuItem(lambda _i: state.title, None, enabled=False),
        pystray.MenuItem(lambda _i: (state.lines or [""])[0], None, enabled=False),
        pystray.Menu.SEPARATOR,
        pystray.MenuItem("ローカルページを開く" if ja else "Open local page", lambda i, _m: ctl.open_page(),
                         default=True),
        pystray.MenuItem("データフォルダを開く" if ja else "Open data folder", lambda i, _m: ctl.open_data_folder()),
        pystray.MenuItem(lambda _i: ("再開" if ja else "Resume") if ctl.is_paused() else ("一時停止" if ja else "Pause"),
                         toggle_pause),
        pystray.MenuItem("今すぐ再試行" if ja else "Retry now", lambda i, _m: ctl.retry_now()),
        pystray.MenuItem("ログフォルダを開く" if ja else "Open log folder", lambda i, _m: ctl.open_logs()),
        pystray.Menu.SEPARATOR,
        pystray.MenuItem("トレイを終了（エージェントは動作を続けます）" if ja else "Quit tray (agent keeps running)",
                         quit_tray),
    )
    icon = pystray.Icon("labedge", icon_image(state.level), _title(pystray.Icon, state.tooltip), menu)

    def refresh(ic) -> None:  # noqa: ANN001
        nonlocal state
        notice = None
        try:
            st = ctl.status()
            new, notice = ctl.state(st), ctl.sheet_notice(st)
        except Exception as exc:  # the DB may be mid-migration or locked: show it, don't die
            new = TrayState(ERROR, "cannot read the agent's state", [str(exc)[:100]], ctl.lang)
        if notice and getattr(ic, "HAS_NOTIFICATION", False):
            try:
                ic.notify(notice, "labedge")
            except Exception:  # noqa: BLE001 - a notification daemon that went away must not stop the tray
                log.warning("desktop notification failed", exc_info=True)
        if new != state:
            state = new
            # The UTF-8 name first: a reader that sees the new WM_NAME then finds the matching full text.
            _set_utf8_name(ic, state.tooltip)
            ic.icon = icon_image(state.level)
            ic.title = _title(type(ic), state.tooltip)
            ic.update_menu()

    def poller(ic) -> None:  # noqa: ANN001
        _enable_x11_clicks(ic, ctl.open_data_folder)
        _set_utf8_name(ic, state.tooltip)
        ic.visible = True
        while not stop.wait(refresh_seconds):
            refresh(ic)
            if not _x11_docked(ic):  # the panel started after us, or lost our request: ask again
                ic.icon = icon_image(state.level)

    icon.run(setup=poller)
    return 0


def _title(icon_cls: type, text: str) -> str:
    """pystray's X11 backend writes the title as a Latin-1 WM_NAME and fails on anything else (a Japanese
    tooltip, a file called 試料A.csv); XEmbed trays show no tooltip anyway, so there it gets a Latin-1
    copy and the full text goes to _NET_WM_NAME (UTF-8). Other backends take the text as it is."""
    if icon_cls.__module__ != "pystray._xorg":
        return text
    return text.replace("\u2014", "-").replace("\u2026", "...").encode("latin-1", "replace").decode("latin-1")


def _set_utf8_name(icon, text: str) -> None:  # noqa: ANN001
    window, disp = getattr(icon, "_window", None), getattr(icon, "_display", None)
    if type(icon).__module__ != "pystray._xorg" or window is None or disp is None:
        return
    try:
        window.change_property(disp.intern_atom("_NET_WM_NAME"), disp.intern_atom("UTF8_STRING"), 8,
                               text.encode("utf-8"))
        disp.flush()
    except Exception:  # noqa: BLE001 - the window is being destroyed; the name is informative only
        log.debug("could not set _NET_WM_NAME", exc_info=True)


def _enable_x11_clicks(icon, on_right_click: Callable[[], Any]) -> None:  # noqa: ANN001
    """pystray's X11 backend dispatches clicks to the default action but never asks the X server for
    them (its window selects only Exposure and StructureNotify; pystray issue #151), so a click on a
    Linux tray icon did nothing. Ask for button presses on its window; other backends are untouched.
    X11 trays have no menu, so the clicks are the menu: left opens the local page (the default
    action), right (or middle) opens the data folder."""
    if type(icon).__module__ != "pystray._xorg":
        return
    from Xlib import X

    handlers = getattr(icon, "_message_handlers", None)
    if isinstance(handlers, dict) and X.ButtonPress in handlers:
        left = handlers[X.ButtonPress]

        def on_press(event) -> None:  # noqa: ANN001
            if event.detail in (2, 3):
                on_right_click()
            else:
                left(event)
        handlers[X.ButtonPress] = on_press

    window, disp = getattr(icon, "_window", None), getattr(icon, "_display", None)
    if window is None or disp is None:
        return
    window.change_attributes(event_mask=X.ExposureMask | X.StructureNotifyMask | X.ButtonPressMask)
    disp.flush()


def _x11_docked(icon) -> bool:  # noqa: ANN001
    """False only when pystray's X11 icon window still sits on the root window, undocked.

    At login the tray icon can start before the panel, and a dock request sent while the panel is
    still starting can be lost; pystray only asks again when the image changes. Setting the image
    (public API) makes it ask again; tray hosts ignore a repeated request for a docked window."""
    if type(icon).__module__ != "pystray._xorg":
        return True
    window, disp = getattr(icon, "_window", None), getattr(icon, "_display", None)
    if window is None or disp is None:
        return True
    try:
        return window.query_tree().parent != disp.screen().root
    except Exception:  # noqa: BLE001 - the window is being destroyed: nothing to dock
        return True


def add_parser(sub) -> None:  # noqa: ANN001
    p = sub.add_parser("tray", help="show the agent's state in the system tray")
    p.add_argument("--config", "-c", type=Path, default=None)
    p.add_argument("--system", action="store_true", help="show the machine-wide service (reads its status file)")
    p.set_defaults(func=_cmd)


def _cmd(args) -> int:  # noqa: ANN001
    from agent.config import default_config_path, load_config

    if args.system and args.config is None:
        from agent.machine import system_paths
        args.config = system_paths().config_file
    cfg = load_config(args.config or default_config_path(), check_watch_folders=False, system=args.system)
    try:
        return run_tray(cfg)
    except Exception as exc:  # no desktop session, no tray support
        print(f"labedge tray: cannot show a tray icon here ({exc}); `labedge status` gives the same "
              "information", file=sys.stderr)
        return 2
