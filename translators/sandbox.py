"""Run a translator worker in a child process with a time limit and a memory limit.

Vendor files are hostile input and translators (especially plug-ins) may hang, leak or
crash. The agent therefore never parses an instrument file in its own process: the child
gets a wall-clock limit (the whole process group is killed when it expires) and an address-
space limit (POSIX: ``RLIMIT_AS`` set by the child itself on start-up, see
``translators.worker``; Windows: a Job object, see ``translators._winjob``).
"""
from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from agent.selfexec import self_command

_STDERR_TAIL = 4000


@dataclass
class SandboxRun:
    returncode: int | None
    timed_out: bool
    elapsed_s: float
    stderr_tail: str

    def signal_name(self) -> str | None:
        if self.returncode is not None and self.returncode < 0:
            try:
                return signal.Signals(-self.returncode).name
            except ValueError:
                return f"signal {-self.returncode}"
        return None


class ProcessLimiter(Protocol):
    """Platform hook: confine a started child and kill it (and its children) on demand."""

    def attach(self, proc: subprocess.Popen) -> None: ...

    def kill(self, proc: subprocess.Popen) -> None: ...

    def close(self) -> None: ...


class PosixLimiter:
    """The child sets its own RLIMIT_AS; here we only own its process group."""

    def attach(self, proc: subprocess.Popen) -> None:
        pass

    def kill(self, proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self) -> None:
        pass


def make_limiter(memory_mb: int) -> ProcessLimiter:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        from translators._winjob import JobLimiter
        return JobLimiter(memory_mb)
    return PosixLimiter()


def worker_command() -> list[str]:
    """argv prefix of the translation worker.

    Frozen (PyInstaller): ``labedge.exe _translate-worker``. From source, run the worker
    module directly: same code, but the child skips importing the whole agent CLI.
    """
    if getattr(sys, "frozen", False):
        return self_command() + ["_translate-worker"]
    return [sys.executable, "-m", "translators.worker"]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    # BLAS thread pools reserve address space per thread; one thread keeps RLIMIT_AS honest.
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - _STDERR_TAIL))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def run_limited(argv: list[str], *, timeout_s: float, memory_mb: int, log_dir: Path,
                env: dict[str, str] | None = None) -> SandboxRun:
    """Run ``argv``; its stdout/stderr go to files in ``log_dir`` (a chatty child cannot fill our memory)."""
    limiter = make_limiter(memory_mb)
    out_path, err_path = log_dir / "worker.stdout", log_dir / "worker.stderr"
    start = time.monotonic()
    timed_out = False
    with out_path.open("wb") as out, err_path.open("wb") as err:
        kwargs: dict = {"stdin": subprocess.DEVNULL, "stdout": out, "stderr": err,
                        "env": env if env is not None else child_env(), "close_fds": True}
        if sys.platform == "win32":  # pragma: no cover
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
        else:
            kwargs["start_new_session"] = True  # own process group: we can kill grandchildren too
        proc = subprocess.Popen(argv, **kwargs)
        try:
            limiter.attach(proc)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                limiter.kill(proc)
                proc.wait()
            else:
                limiter.kill(proc)  # reap anything the translator left running
        except BaseException:
            limiter.kill(proc)
            proc.wait()
            raise
        finally:
            limiter.close()
    return SandboxRun(returncode=proc.returncode, timed_out=timed_out,
                      elapsed_s=time.monotonic() - start, stderr_tail=_tail(err_path))


#: A worker translates at most this many measurements, then a fresh process takes over: start-up
#: (~0.3 s of imports) is paid once per batch, not per file, and nothing a translator leaves behind
#: lives long. Any failure (time-out, crash, memory) ends the worker at once.
MAX_REQUESTS = 50
MAX_AGE_S = 600.0


#: Where warm workers write their stderr: the agent's state dir (private, see agent/private.py),
#: never the shared temp dir where other local accounts could read file names and tracebacks and
#: where a killed agent's logs would stay forever. None (outside the agent) = the temp dir.
_worker_log_dir: Path | None = None


def set_worker_log_dir(path: Path) -> None:
    """Keep worker logs in ``path``; logs left by a killed agent are removed (one agent per state dir)."""
    global _worker_log_dir
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    for stale in path.glob("labedge-worker-*.log"):
        stale.unlink(missing_ok=True)
    _worker_log_dir = path


class WarmWorker:
    """A translator worker started before it is needed; it serves requests one at a time."""

    def __init__(self, env: dict[str, str], memory_mb: int) -> None:
        import queue
        import tempfile

        self.env, self.memory_mb = env, memory_mb
        self.started = time.monotonic()
        self.served = 0
        fd, name = tempfile.mkstemp(prefix="labedge-worker-", suffix=".log", dir=_worker_log_dir)
        self.log_path = Path(name)
        kwargs: dict = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": fd, "env": env,
                        "close_fds": True}
        if sys.platform == "win32":  # pragma: no cover
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
        else:
            kwargs["start_new_session"] = True
        try:
            self.proc = subprocess.Popen(worker_command() + ["--request", "-", "--parent-pid", str(os.getpid()),
                                                             "--max-requests", str(MAX_REQUESTS)], **kwargs)
        finally:
            os.close(fd)
        self.limiter = make_limiter(memory_mb)
        self.limiter.attach(self.proc)
        self.answers: "queue.Queue[str | None]" = queue.Queue()
        # A thread, not select(): pipes cannot be polled on Windows.
        threading.Thread(target=self._read_answers, name="translator-answers", daemon=True).start()

    def _read_answers(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.answers.put(line.decode("utf-8", "replace").strip())
        self.answers.put(None)  # the worker exited

    def usable(self, env: dict[str, str], memory_mb: int) -> bool:
        return (self.proc.poll() is None and self.env == env and self.memory_mb == memory_mb
                and self.served < MAX_REQUESTS and time.monotonic() - self.started < MAX_AGE_S)

    def ask(self, request: Path, timeout_s: float) -> SandboxRun:
        import queue

        start = time.monotonic()
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.served += 1
        code: int | None = None
        timed_out = False
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(f"{request}\n".encode("utf-8"))
            self.proc.stdin.flush()
        except OSError:
            pass  # it died while idle: its exit code and log say why
        try:
            answer = self.answers.get(timeout=timeout_s)
        except queue.Empty:
            timed_out, answer = True, None
        if answer is not None and answer.startswith("done "):
            code = int(answer.split()[1])
        else:  # time-out, crash or a garbled answer: this process is finished
            self.discard(keep_log=True)
            code = self.proc.returncode
        return SandboxRun(returncode=code, timed_out=timed_out, elapsed_s=time.monotonic() - start,
                          stderr_tail=_tail_from(self.log_path, offset))

    def discard(self, keep_log: bool = False) -> None:
        self.limiter.kill(self.proc)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process group that ignores SIGKILL
            pass
        self.limiter.close()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        if not keep_log:
            self.log_path.unlink(missing_ok=True)


def _tail_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(offset, size - _STDERR_TAIL))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


_warm_lock = threading.Lock()
_warm: WarmWorker | None = None


def prewarm(memory_mb: int, env: dict[str, str] | None = None) -> None:
    """Have a worker ready for the next translation. Call from a long-lived thread: on Linux the
    worker is killed when the thread that started it ends (so it never outlives the agent)."""
    global _warm
    env = env if env is not None else child_env()
    with _warm_lock:
        if _warm is not None and _warm.usable(env, memory_mb):
            return
        stale, _warm = _warm, WarmWorker(env, memory_mb)
    if stale is not None:
        stale.discard()


def run_request(request: Path, *, timeout_s: float, memory_mb: int) -> SandboxRun:
    """Have a worker translate ``request`` within ``timeout_s``; a failed worker is replaced."""
    global _warm
    env = child_env()
    with _warm_lock:
        w, _warm = _warm, None
    if w is None or not w.usable(env, memory_mb):
        if w is not None:
            w.discard()
        w = WarmWorker(env, memory_mb)
    run = w.ask(request, timeout_s)
    if run.returncode is not None and w.proc.poll() is None:
        with _warm_lock:  # healthy: keep it for the next request, unless another is already kept
            if _warm is None:
                _warm, w = w, None
        if w is not None:
            w.discard()
    else:
        w.log_path.unlink(missing_ok=True)
        prewarm(memory_mb, env)  # the next measurement should not wait for a new process
    return run


def _discard_warm() -> None:
    global _warm
    with _warm_lock:
        w, _warm = _warm, None
    if w is not None:
        w.discard()


atexit.register(_discard_warm)
