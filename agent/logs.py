"""Logging: a rotating file in the log dir, plus the console when run in the foreground."""
from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(log_dir: Path | None, level: str = "INFO", console: bool = True) -> Path | None:
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_labedge", False):
            root.removeHandler(h)
            h.close()
    root.setLevel(getattr(logging, level, logging.INFO))
    path = None
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        path = log_dir / "labedge.log"
        # errors=backslashreplace: a file name that is not UTF-8 must not turn every log line into a traceback
        fh = logging.handlers.RotatingFileHandler(path, maxBytes=10 * 1024 * 1024, backupCount=5, encoding="utf-8",
                                                  errors="backslashreplace")
        fh.setFormatter(logging.Formatter(FORMAT))
        fh._labedge = True  # type: ignore[attr-defined]
        root.addHandler(fh)
    if console:
        if hasattr(sys.stderr, "reconfigure"):
            sys.stderr.reconfigure(errors="backslashreplace")
        ch = logging.StreamHandler(sys.stderr)
        ch.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
        ch._labedge = True  # type: ignore[attr-defined]
        root.addHandler(ch)
    for noisy in ("watchdog", "bagit"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path
