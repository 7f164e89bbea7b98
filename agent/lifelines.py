"""Children that die with their parent, however the parent dies (kill -9 included).

A parent that is killed cannot stop its children, so the OS must: on Linux each child asks for
a parent-death signal (prctl PR_SET_PDEATHSIG) between fork and exec; on Windows every child is
put in a Job object with KILL_ON_JOB_CLOSE, whose last handle the kernel closes when the parent
exits. The translator worker does the same for itself (translators.worker.die_with_parent).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any, Callable

PR_SET_PDEATHSIG = 1


def _linux_preexec(parent_pid: int, sig: int) -> Callable[[], None]:
    def preexec() -> None:  # runs in the child, after fork, before exec: no locks, no logging
        import ctypes
        if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
            os._exit(127)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(127)
    return preexec


class Lifelines:
    """``popen_kwargs()`` for each child's Popen, then ``adopt(proc)`` once it is started."""

    def __init__(self, sig: int = signal.SIGTERM) -> None:
        self.sig = int(sig)
        self._job: Any = None
        if sys.platform == "win32":  # pragma: no cover - Windows only
            self._job = _KillOnCloseJob()

    def popen_kwargs(self) -> dict[str, Any]:
        if sys.platform.startswith("linux"):
            return {"preexec_fn": _linux_preexec(os.getpid(), self.sig)}
        return {}

    def adopt(self, proc: subprocess.Popen) -> None:
        if self._job is not None:  # pragma: no cover - Windows only
            self._job.attach(proc)


class _KillOnCloseJob:  # pragma: no cover - Windows only
    """A Job object that kills its processes when its (our) handle closes: at our exit, however."""

    def __init__(self) -> None:
        import ctypes

        from translators._winjob import _ExtendedLimits, _JobObjectExtendedLimitInformation, _LIMIT_KILL_ON_JOB_CLOSE

        self._k32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        self._job = self._k32.CreateJobObjectW(None, None)
        if not self._job:
            raise OSError(ctypes.get_last_error(), "CreateJobObjectW failed")  # type: ignore[attr-defined]
        info = _ExtendedLimits()
        info.BasicLimitInformation.LimitFlags = _LIMIT_KILL_ON_JOB_CLOSE
        if not self._k32.SetInformationJobObject(self._job, _JobObjectExtendedLimitInformation,
                                                 ctypes.byref(info), ctypes.sizeof(info)):
            raise OSError(ctypes.get_last_error(), "SetInformationJobObject failed")  # type: ignore[attr-defined]

    def attach(self, proc: subprocess.Popen) -> None:
        import ctypes
        handle = self._k32.OpenProcess(0x1F0FFF, False, proc.pid)
        try:
            if not self._k32.AssignProcessToJobObject(self._job, handle):
                raise OSError(ctypes.get_last_error(), "AssignProcessToJobObject failed")  # type: ignore[attr-defined]
        finally:
            self._k32.CloseHandle(handle)
