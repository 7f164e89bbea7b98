"""The local page after a restart (TIME_WAIT), and a port another program really holds."""
from __future__ import annotations

import os
import socket
import time
import urllib.request
from pathlib import Path

from core_helpers import wait_for
from exact_helpers import Run, agent_cfg, status
from transport_helpers import free_port


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _time_wait(port: int) -> bool:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "06" and int(f[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def test_page_answers_within_2_s_of_a_restart(tmp_path):
    port = free_port()
    cfg = agent_cfg(tmp_path, web_port=port)
    first = Run(cfg).wait_running()
    wait_for(lambda: _answers(port), 30, "the page")
    # a browser tab keeps a connection open: the agent's side closes first when it stops, so
    # the agent's port is left in TIME_WAIT once the browser closes too
    tab = socket.create_connection(("127.0.0.1", port))
    tab.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % port)  # a request still being sent
    assert first.stop() == 0
    tab.close()
    assert _time_wait(port), "no TIME_WAIT connection on the page's port: the test would prove nothing"
    second = Run(cfg).wait_running()
    try:
        t0 = time.monotonic()
        wait_for(lambda: _answers(port), 10, "the page after the restart")
        assert time.monotonic() - t0 < 2.0
    finally:
        assert second.stop() == 0


def test_port_held_by_another_program_names_it(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        cfg = agent_cfg(tmp_path, web_port=port)
        agent = Run(cfg).wait_running()
        try:
            def problem():
                return [p["message"] for p in status(cfg)[1]["problems"] if "cannot listen" in p["message"]]
            (msg,) = wait_for(problem, 30, "the page problem")
        finally:
            assert agent.stop() == 0
    assert f"PID {os.getpid()}" in msg and "pytest" in msg, msg
    assert "Choose another port" in msg and f"port = {port + 1}" in msg, msg
