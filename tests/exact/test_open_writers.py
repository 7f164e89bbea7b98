"""A writer that opened its file before the agent's watch was live (no open or write event) and
then pauses longer than settle_seconds: the file is not taken until the writer closes it.

Real child processes hold the files; only the Win32 CreateFileW/CloseHandle pair is faked.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from core_helpers import db_packages, instrument, package_dirs, provenance, status_json, wait_for, write_config
from transport_helpers import AgentProc

from agent.watch.settle import SettleTracker
from agent.watch.writer_probes import ExclusiveOpenProbe, ProcFdProbe, open_for_writing
from agent.watch.writers import CloseEvents

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")

# A child that opens PATH in MODE, writes argv[3] (if any), says "ready", then obeys stdin:
# "more" appends the rest of the scan and closes; EOF closes without writing.
HOLDER = r"""
import sys
path, mode, first = sys.argv[1], sys.argv[2], sys.argv[3].encode()
fh = open(path, mode, buffering=0)
if first:
    fh.write(first)
print("ready", flush=True)
if sys.stdin.readline().strip() == "more":
    fh.write(sys.argv[4].encode())
fh.close()
print("closed", flush=True)
"""

HEAD = ('*RAS_DATA_START\n*RAS_HEADER_START\n*FILE_COMMENT "held open before the agent"\n*RAS_HEADER_END\n'
        '*RAS_INT_START\n')
ROWS = ["%.2f %d 1.0\n" % (10 + i * 0.02, 100 + i) for i in range(40)]
FIRST, REST = HEAD + "".join(ROWS[:20]), "".join(ROWS[20:]) + "*RAS_INT_END\n*RAS_DATA_END\n"


class Holder:
    def __init__(self, path: Path, mode: str, first: str = "", rest: str = "") -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), mode, first, rest],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def finish(self, more: bool = False) -> None:
        self.proc.stdin.write("more\n" if more else "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "closed"
        self.proc.stdin.close()
        self.proc.wait(10)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@linux
@pytest.mark.parametrize("mode, expect", [("wb", True), ("r+b", True), ("ab", True), ("rb", False)])
def test_proc_probe_sees_a_writer_and_not_a_reader(tmp_path, mode, expect):
    f = tmp_path / "scan.ras"
    f.write_bytes(b"x")
    other = tmp_path / "elsewhere"
    other.mkdir()
    h = Holder(f, mode)
    decoy = Holder(other / "scan.ras", "wb")  # same name, another file: must not count
    try:
        assert open_for_writing(f) is expect
    finally:
        h.finish()
        decoy.finish()
    assert open_for_writing(f) is False  # closed
    assert open_for_writing(tmp_path / "gone.ras") is None


@linux
def test_proc_probe_scans_once_per_tick_for_several_files(tmp_path):
    now = [0.0]
    probe = ProcFdProbe(clock=lambda: now[0], max_age=1.0)
    files = [tmp_path / f"f{i}.ras" for i in range(3)]
    for f in files:
        f.write_bytes(b"x")
    h = Holder(files[1], "ab")
    try:
        assert [probe.open_for_writing(f) for f in files] == [False, True, False]
        assert probe.scans == 1
        h.finish()
        assert probe.open_for_writing(files[1]) is False and probe.scans == 1  # its fd is looked at again
        now[0] += 1.0
        assert probe.open_for_writing(files[1]) is False and probe.scans == 2
    finally:
        h.kill()
    tiny = ProcFdProbe(max_entries=1)  # a scan cut short by its budget cannot say "no writer"
    assert tiny.open_for_writing(files[0]) is None


class FakeKernel32:
    """CreateFileW/CloseHandle with Windows' share-mode rule: an open fails with
    ERROR_SHARING_VIOLATION if it asks for access another handle does not share, or does not
    share access another handle has."""

    READ, WRITE = 0x80000000, 0x40000000
    SHARE_READ, SHARE_WRITE = 0x1, 0x2

    def __init__(self) -> None:
        self.handles: dict[int, tuple[str, int, int]] = {}
        self.error = 0
        self.denied: set[str] = set()

    def _wants(self, access: int) -> set[str]:
        return {n for n, bit in (("r", self.READ), ("w", self.WRITE)) if access & bit}

    def _shares(self, share: int) -> set[str]:
        return {n for n, bit in (("r", self.SHARE_READ), ("w", self.SHARE_WRITE)) if share & bit}

    def CreateFileW(self, path, access, share, _sec, disposition, _flags, _tmpl):  # noqa: N802, ANN001
        assert disposition == 3  # OPEN_EXISTING: the probe never creates a file
        if path in self.denied:
            self.error = 5  # ERROR_ACCESS_DENIED
            return 0xFFFFFFFFFFFFFFFF
        for p, a, s in self.handles.values():
            if p == path and (not self._wants(access) <= self._shares(s) or not self._wants(a) <= self._shares(share)):
                self.error = 32
                return 0xFFFFFFFFFFFFFFFF
        handle = len(self.handles) + 100
        self.handles[handle] = (path, access, share)
        return handle

    def CloseHandle(self, handle):  # noqa: N802, ANN001
        del self.handles[handle]
        return 1


def test_windows_probe_through_a_fake_of_createfile():
    k32 = FakeKernel32()
    probe = ExclusiveOpenProbe(k32, lambda: k32.error)
    assert probe.open_for_writing(Path("C:/data/a.spc")) is False
    assert k32.handles == {}  # the probe's own handle is closed
    viewer = k32.CreateFileW("C:/data/a.spc", k32.READ, k32.SHARE_READ | k32.SHARE_WRITE, None, 3, 0, None)
    assert probe.open_for_writing(Path("C:/data/a.spc")) is False  # a reader is not a writer
    writer = k32.CreateFileW("C:/data/b.spc", k32.WRITE, k32.SHARE_READ, None, 3, 0, None)
    assert probe.open_for_writing(Path("C:/data/b.spc")) is True
    k32.CloseHandle(writer)
    assert probe.open_for_writing(Path("C:/data/b.spc")) is False
    k32.denied.add("C:/data/c.spc")
    assert probe.open_for_writing(Path("C:/data/c.spc")) is None  # cannot tell
    k32.CloseHandle(viewer)
    assert k32.handles == {}


@linux
def test_tracker_waits_for_the_close_then_gives_up_after_the_bound(tmp_path):
    """A file the events never saw created: the probe decides; a writer that never closes is
    taken after open_wait_seconds, once, with the warning callback."""
    f = tmp_path / "scan.ras"
    h = Holder(f, "wb", FIRST, REST)
    now = [0.0]
    taken_open: list[Path] = []
    events = CloseEvents(ProcFdProbe(clock=lambda: now[0], max_age=0))
    tr = SettleTracker(0.3, clock=lambda: now[0], open_wait_seconds=5, is_open=events.is_open,
                       on_taken_open=lambda p, _q: taken_open.append(p))
    try:
        tr.add(f)
        assert tr.poll() == ([], [])
        now[0] = 1.0
        assert tr.poll() == ([], []) and "waiting for the instrument to close it" in tr.waiting[f]
        now[0] = 6.0
        (settled,), _ = tr.poll()
        assert settled.path == f and taken_open == [f] and tr.waiting == {}
        tr.add(f)  # the next version, same writer, now closed
        h.finish(more=True)
        tr.poll()
        now[0] = 7.0
        (settled,), _ = tr.poll()
        assert settled.size == len(FIRST + REST) and taken_open == [f]
    finally:
        h.kill()


@linux
def test_writer_open_before_the_agent_started_pausing_past_settle_ships_once(tmp_path):
    watch = tmp_path / "watch"
    watch.mkdir()
    src = watch / "scan.ras"
    # the grace for "looks truncated" is off: only the open-writer check may hold the file back
    cfg = write_config(tmp_path, [instrument(watch, truncated_grace_seconds=0)])
    writer = Holder(src, "wb", FIRST, REST)  # opened and half written before the agent exists
    proc = AgentProc(cfg).start()
    db = tmp_path / "state" / "state.sqlite3"
    try:
        def waiting_or_taken() -> object:
            msgs = [p["message"] for p in status_json(cfg).get("problems") or []]
            return [m for m in msgs if "waiting for the instrument to close it" in m] or db_packages(db)
        got = wait_for(waiting_or_taken, 30, "status to say the file waits for its writer")
        assert db_packages(db) == [], "the half-written file was taken while its writer held it open"
        (msg,) = got
        assert str(src) in msg and "\n" not in msg
        # the message comes only once the file was quiet for settle_seconds: the pause the bug needs
        writer.finish(more=True)
        wait_for(lambda: db_packages(db), 30, "the package")
        wait_for(lambda: not (status_json(cfg).get("facts") or {}).get("settling:xrd-1"), 30, "nothing left settling")
        assert not [p for p in status_json(cfg)["problems"] if "waiting for the instrument" in p["message"]]
    finally:
        writer.kill()
        proc.kill()
    (pkg,) = db_packages(db)
    assert pkg["state"] == "queued"
    (d,) = package_dirs(tmp_path / "spool")
    (raw,) = (d / "data" / "raw").iterdir()
    assert raw.read_bytes() == (FIRST + REST).encode() and "supersedes" not in provenance(d)
