"""The real tray icon (`labedge tray`, pystray's X11 backend) on a virtual desktop: Xvfb with trayer as
the system tray. It docks, its picture and name follow the running agent (a held measurement turns it
to "needs attention" with the sheet reason), a left click opens the local page, a right click the data
folder, and quitting the tray leaves the agent running."""
from __future__ import annotations

import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from PIL import Image

from agent.config import load_config
from agent.runner import Agent
from testpaths import REPO, in_ci
from tray.app import TrayController
from tray.icons import icon_image
from tray.state import ATTENTION, OFFLINE, PAUSED, STATES

from Xlib import X, display
from Xlib.ext import xtest


def wait_for(cond, timeout: float, what: str):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        msg = f"{tool} is not installed (.ci/run installs it with apt)"
        if in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture()
def desktop(tmp_path: Path):
    """A virtual X display with a system tray; yields the DISPLAY string."""
    xvfb, trayer = _need("Xvfb"), _need("trayer")
    r, w = os.pipe()
    x = subprocess.Popen([xvfb, "-displayfd", str(w), "-screen", "0", "640x480x24", "-nolisten", "tcp"],
                         pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=(tmp_path / "xvfb.log").open("wb"))
    os.close(w)
    procs = [x]
    try:
        got = b""
        deadline = time.monotonic() + 30
        while not got.endswith(b"\n"):
            ready, _, _ = select.select([r], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError("Xvfb did not start: " + (tmp_path / "xvfb.log").read_text()[-500:])
            chunk = os.read(r, 16)
            if not chunk:
                raise AssertionError("Xvfb exited: " + (tmp_path / "xvfb.log").read_text()[-500:])
            got += chunk
        name = f":{int(got)}"
        procs.append(subprocess.Popen([trayer, "--edge", "top", "--align", "right", "--widthtype", "request",
                                       "--height", "32", "--transparent", "false"], env={**os.environ, "DISPLAY": name},
                                      stdout=subprocess.DEVNULL, stderr=(tmp_path / "trayer.log").open("wb")))
        d = display.Display(name)
        tray_atom = d.intern_atom("_NET_SYSTEM_TRAY_S0")
        wait_for(lambda: d.get_selection_owner(tray_atom) != 0, 30, "trayer to own the system tray")
        d.close()
        yield name
    finally:
        os.close(r)
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def _icon(d):  # noqa: ANN001, ANN202
    """Our icon window, once docked: named "labedge: ..." and reparented out of the root window."""
    root = d.screen().root
    stack = list(root.query_tree().children)
    while stack:
        w = stack.pop()
        try:
            name = w.get_wm_name()
            stack.extend(w.query_tree().children)
        except Exception:  # noqa: BLE001 - a window may vanish while we walk the tree
            continue
        if isinstance(name, str) and name.startswith("labedge: ") and w.query_tree().parent != root:
            return w
    return None


def _tree(d) -> str:  # noqa: ANN001
    """The window tree with names, for a failure message."""
    lines: list[str] = []

    def walk(w, depth: int) -> None:  # noqa: ANN001
        try:
            g = w.get_geometry()
            lines.append(f"{'  ' * depth}{w.id:#x} {w.get_wm_name()!r:.50} {g.width}x{g.height}+{g.x}+{g.y}")
            for c in w.query_tree().children:
                walk(c, depth + 1)
        except Exception as exc:  # noqa: BLE001
            lines.append(f"{'  ' * depth}{w.id:#x} gone ({exc.__class__.__name__})")
    walk(d.screen().root, 0)
    return "\n".join(lines)


def _shown(w) -> str:  # noqa: ANN001
    """Which state's icon the window shows: the nearest of the six, drawn as pystray draws them
    (scaled to the window, alpha dropped onto black)."""
    g = w.get_geometry()
    raw = w.get_image(0, 0, g.width, g.height, X.ZPixmap, 0xFFFFFFFF).data
    seen = Image.frombytes("RGB", (g.width, g.height), bytes(raw), "raw", "BGRX")

    def dist(level: str) -> float:
        want = Image.new("RGB", (g.width, g.height))
        want.paste(icon_image(level).resize((g.width, g.height), Image.LANCZOS))
        return sum(abs(a - b) for a, b in zip(seen.tobytes(), want.tobytes())) / (g.width * g.height)
    return min(STATES, key=dist)


def _click(d, w, button: int = 1) -> None:  # noqa: ANN001
    g = w.get_geometry()
    pos = d.screen().root.translate_coords(w, g.width // 2, g.height // 2)
    xtest.fake_input(d, X.MotionNotify, x=pos.x, y=pos.y)
    xtest.fake_input(d, X.ButtonPress, button)
    xtest.fake_input(d, X.ButtonRelease, button)
    d.sync()


@pytest.fixture()
def cfg(cfg):  # noqa: ANN001 - the tray tests' config, but a measurement without a sheet waits for one
    text = cfg.source.read_text(encoding="utf-8").replace("hold_seconds = 0", 'unpaired_policy = "hold"')
    cfg.source.write_text(text, encoding="utf-8")
    return load_config(cfg.source)


def test_tray_docks_follows_the_agent_and_opens_the_page(cfg, tmp_path, desktop):
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"  # stands in for the user's browser: records what it was asked to open
    browser.write_text(f'#!/bin/sh\necho "$1" >> "{opened}"\n')
    browser.chmod(browser.stat().st_mode | stat.S_IXUSR)
    agent = Agent(cfg)
    agent.start()
    tray = None
    try:
        ctl = TrayController(cfg, opener=lambda url: None)
        wait_for(lambda: ctl.state().level == OFFLINE, 30, "the agent's heartbeat")
        log = (tmp_path / "tray.log").open("wb")
        tray = subprocess.Popen([sys.executable, "-m", "agent", "tray", "-c", str(cfg.source)], cwd=REPO,
                                env={**os.environ, "DISPLAY": desktop, "BROWSER": str(browser)},
                                stdout=log, stderr=subprocess.STDOUT)
        d = display.Display(desktop)
        try:
            icon = wait_for(lambda: _icon(d), 30, "the icon to dock in the system tray")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nwindows:\n{_tree(d)}\ntray log:\n"
                                 f"{(tmp_path / 'tray.log').read_text(errors='replace')[-2000:]}") from None
        assert icon.get_wm_name().startswith("labedge: offline - this PC keeps measurements locally")
        wait_for(lambda: _shown(icon) == OFFLINE, 10, "the offline icon")

        ctl.set_paused(True)  # what the tray's own Pause does; X11 trays have no menus, so through the DB
        wait_for(lambda: icon.get_wm_name().startswith("labedge: paused") and _shown(icon) == PAUSED,
                 20, "the icon to show the pause")
        ctl.set_paused(False)

        # no sheet: it is held. A Japanese name once crashed the tray (pystray's X11 title is Latin-1 only)
        (tmp_path / "watch" / "試料-17.csv").write_text("2theta,counts\n10,5\n")
        name = wait_for(lambda: (n := icon.get_wm_name()).startswith("labedge: needs attention") and n, 30,
                        "the held measurement on the tray")
        assert name == "labedge: needs attention - 1 measurement needs a sample sheet (??-17.csv)"
        net = icon.get_full_property(d.intern_atom("_NET_WM_NAME"), d.intern_atom("UTF8_STRING"))
        assert net is not None
        assert net.value.decode("utf-8") == "labedge: needs attention — 1 measurement needs a sample sheet (試料-17.csv)"
        assert tray.poll() is None, (tmp_path / "tray.log").read_text(errors="replace")[-2000:]
        wait_for(lambda: _shown(icon) == ATTENTION, 10, "the attention icon")

        _click(d, icon)
        url = wait_for(lambda: opened.exists() and opened.read_text().strip(), 20, "a click to open the page")
        assert url == ctl.page_url() and url.startswith("http://127.0.0.1:")
        _click(d, icon, button=3)  # X11 trays have no menu: the right click opens the data folder
        wait_for(lambda: len(opened.read_text().split()) == 2, 20, "a right click to open the data folder")
        assert opened.read_text().split()[1] == (tmp_path / "watch").resolve().as_uri()

        tray.send_signal(signal.SIGTERM)
        tray.wait(20)
        assert all(t.is_alive() for t in agent.threads), "the agent keeps running without its tray"
        d.close()
    finally:
        if tray is not None and tray.poll() is None:
            tray.kill()
        assert agent.stop() == []
