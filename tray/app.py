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
from agent.status import build_status
from tray.icons import icon_image
from tray.state import TrayState, tray_state

log = logging.getLogger(__name__)


class TrayController:
    """Everything the menu does, without pystray, so it is testable anywhere."""

    def __init__(self, cfg: Config, opener: Callable[[str], Any] = webbrowser.open) -> None:
        self.cfg = cfg
        self.opener = opener

    def status(self) -> dict[str, Any]:
        return build_status(self.cfg)

    def state(self) -> TrayState:
        return tray_state(self.status())

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
        if not self.cfg.state_db.exists():
            return False
        store = self._store()
        try:
            return bool(store.control().get("paused"))
        finally:
            store.close()

    def retry_now(self) -> None:
        store = self._store()
        try:
            store.set_control(retry_requested_at=time.time())
        finally:
            store.close()

    def open_logs(self) -> None:
        folder = str(self.cfg.log_dir)
        if sys.platform == "win32":
            subprocess.Popen(["explorer", folder])
        else:
            self.opener(Path(folder).as_uri())


def run_tray(cfg: Config, refresh_seconds: float = 2.0) -> int:  # pragma: no cover - needs a desktop
    import pystray

    ctl = TrayController(cfg)
    state = ctl.state()
    stop = threading.Event()

    def toggle_pause(icon, _item):  # noqa: ANN001
        ctl.set_paused(not ctl.is_paused())
        refresh(icon)

    def quit_tray(icon, _item):  # noqa: ANN001
        stop.set()
        icon.stop()

    menu = pystray.Menu(
        pystray.MenuItem(lambda _i: state.title, None, enabled=False),
        pystray.MenuItem("Open labedge page / ページを開く", lambda i, _m: ctl.open_page(), default=True),
        pystray.MenuItem(lambda _i: "Resume / 再開" if ctl.is_paused() else "Pause / 一時停止", toggle_pause),
        pystray.MenuItem("Retry now / 今すぐ再試行", lambda i, _m: ctl.retry_now()),
        pystray.MenuItem("Open log folder / ログフォルダ", lambda i, _m: ctl.open_logs()),
        pystray.Menu.SEPARATOR,
        pystray.MenuItem("Quit tray (agent keeps running)", quit_tray),
    )
    icon = pystray.Icon("labedge", icon_image(state.level), state.tooltip, menu)

    def refresh(ic) -> None:  # noqa: ANN001
        nonlocal state
        try:
            new = ctl.state()
        except Exception as exc:  # the DB may be mid-migration or locked: show it, don't die
            new = TrayState("error", "cannot read the agent's state", [str(exc)[:100]])
        if new != state:
            state = new
            ic.icon = icon_image(state.level)
            ic.title = state.tooltip
            ic.update_menu()

    def poller(ic) -> None:  # noqa: ANN001
        _enable_x11_clicks(ic)
        ic.visible = True
        while not stop.wait(refresh_seconds):
            refresh(ic)
            if not _x11_docked(ic):  # the panel started after us, or lost our request: ask again
                ic.icon = icon_image(state.level)

    icon.run(setup=poller)
    return 0


def _enable_x11_clicks(icon) -> None:  # noqa: ANN001
    """pystray's X11 backend dispatches clicks to the default action but never asks the X server for
    them (its window selects only Exposure and StructureNotify; pystray issue #151), so a click on a
    Linux tray icon did nothing. Ask for button presses on its window; other backends are untouched."""
    if type(icon).__module__ != "pystray._xorg":
        return
    from Xlib import X

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
    p.set_defaults(func=_cmd)


def _cmd(args) -> int:  # noqa: ANN001
    from agent.config import default_config_path, load_config

    cfg = load_config(args.config or default_config_path(), check_watch_folders=False)
    try:
        return run_tray(cfg)
    except Exception as exc:  # no desktop session, no tray support
        print(f"labedge tray: cannot show a tray icon here ({exc}); `labedge status` gives the same "
              "information", file=sys.stderr)
        return 2
