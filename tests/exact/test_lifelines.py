"""kill -9 of `labedge demo` takes its mosquitto, receiver and agent with it (their ports free)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from core_helpers import REPO, wait_for

from agent.demo import find_mosquitto
from agent.lifelines import Lifelines


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has died; only its exit status waits for a reaper


def test_killing_the_demo_kills_every_child(tmp_path):
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")  # test_demo.py fails in CI for this
    out = tmp_path / "demo.out"
    with open(out, "wb") as fh:
        demo = subprocess.Popen([sys.executable, "-m", "agent", "demo", "--dir", str(tmp_path / "demo")],
                                cwd=REPO, stdout=fh, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        text = wait_for(lambda: (lambda t: t if "started the agent" in t else None)(out.read_text()), 60,
                        "the demo to start its children")
        pids = [int(p) for p in re.findall(r"\(pid (\d+)\)", text)]
        assert len(pids) == 3 and all(_alive(p) for p in pids), text
    finally:
        demo.send_signal(signal.SIGKILL)
        demo.wait(10)
    try:
        wait_for(lambda: not any(_alive(p) for p in pids), 20, "every child of the killed demo to exit")
    finally:
        for p in pids:  # never leave the broker and its ports behind when the check fails
            if _alive(p):
                os.kill(p, signal.SIGKILL)


def test_a_child_whose_parent_is_killed_gets_the_signal(tmp_path):
    """The interface on its own: a parent process started with Lifelines, its child, kill -9."""
    script = ("import subprocess, sys, time\n"
              "from agent.lifelines import Lifelines\n"
              "l = Lifelines()\n"
              "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], **l.popen_kwargs())\n"
              "l.adopt(p)\nprint(p.pid, flush=True)\ntime.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert _alive(child)
    parent.kill()
    parent.wait(10)
    wait_for(lambda: not _alive(child), 10, "the orphan to be signalled")
    assert Lifelines().popen_kwargs()  # Linux: a preexec that sets PR_SET_PDEATHSIG
