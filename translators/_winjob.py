"""Windows Job object: memory cap and kill-on-close for the translator child.

Windows has no RLIMIT_AS; a Job object with JOB_OBJECT_LIMIT_PROCESS_MEMORY caps the
committed memory of every process in the job, and KILL_ON_JOB_CLOSE ends them all
(grandchildren included) when we close the handle. Only exercised on Windows.
"""
from __future__ import annotations

import ctypes
import subprocess
from ctypes import wintypes

_JobObjectExtendedLimitInformation = 9
_LIMIT_PROCESS_MEMORY = 0x100
_LIMIT_KILL_ON_JOB_CLOSE = 0x2000
_PROCESS_ALL_ACCESS = 0x1F0FFF


class _IoCounters(ctypes.Structure):
    _fields_ = [(n, ctypes.c_ulonglong) for n in (
        "ReadOperationCount", "WriteOperationCount", "OtherOperationCount",
        "ReadTransferCount", "WriteTransferCount", "OtherTransferCount")]


class _BasicLimits(ctypes.Structure):
    _fields_ = [("PerProcessUserTimeLimit", ctypes.c_longlong), ("PerJobUserTimeLimit", ctypes.c_longlong),
                ("LimitFlags", wintypes.DWORD), ("MinimumWorkingSetSize", ctypes.c_size_t),
                ("MaximumWorkingSetSize", ctypes.c_size_t), ("ActiveProcessLimit", wintypes.DWORD),
                ("Affinity", ctypes.c_size_t), ("PriorityClass", wintypes.DWORD),
                ("SchedulingClass", wintypes.DWORD)]


class _ExtendedLimits(ctypes.Structure):
    _fields_ = [("BasicLimitInformation", _BasicLimits), ("IoInfo", _IoCounters),
                ("ProcessMemoryLimit", ctypes.c_size_t), ("JobMemoryLimit", ctypes.c_size_t),
                ("PeakProcessMemoryUsed", ctypes.c_size_t), ("PeakJobMemoryUsed", ctypes.c_size_t)]


class JobLimiter:
    def __init__(self, memory_mb: int) -> None:
        k32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        self._k32 = k32
        self._job = k32.CreateJobObjectW(None, None)
        if not self._job:
            raise OSError(ctypes.get_last_error(), "CreateJobObjectW failed")  # type: ignore[attr-defined]
        info = _ExtendedLimits()
        info.BasicLimitInformation.LimitFlags = _LIMIT_PROCESS_MEMORY | _LIMIT_KILL_ON_JOB_CLOSE
        info.ProcessMemoryLimit = int(memory_mb) * 1024 * 1024
        if not k32.SetInformationJobObject(self._job, _JobObjectExtendedLimitInformation,
                                           ctypes.byref(info), ctypes.sizeof(info)):
            raise OSError(ctypes.get_last_error(), "SetInformationJobObject failed")  # type: ignore[attr-defined]

    def attach(self, proc: subprocess.Popen) -> None:
        handle = self._k32.OpenProcess(_PROCESS_ALL_ACCESS, False, proc.pid)
        try:
            if not self._k32.AssignProcessToJobObject(self._job, handle):
                raise OSError(ctypes.get_last_error(), "AssignProcessToJobObject failed")  # type: ignore[attr-defined]
        finally:
            self._k32.CloseHandle(handle)

    def kill(self, proc: subprocess.Popen) -> None:
        self._k32.TerminateJobObject(self._job, 1)

    def close(self) -> None:
        if self._job:
            self._k32.CloseHandle(self._job)
            self._job = None
