"""Glue that many translators share: picking their file, the sniff loop, tidy header values.

Each translator folder keeps what is its own (the parser and the vocabulary table); the few
lines every reader needs around them live here once, so a fix (an unreadable file, a string
too long for RDE) reaches every format at the same time.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Sequence

from translators.contract import UnsupportedFile

#: RDE rejects metadata strings over 1024 bytes; 1000 leaves room for the writer's checks.
MAX_STR = 1000


# ---- choosing files ---------------------------------------------------------------------------

def best_score(paths: Sequence[Path], score: Callable[[Path], float]) -> float:
    """The highest ``score(path)`` over ``paths`` (0.0 for none), for ``Translator.sniff``.

    ``sniff`` must never raise: if reading any path fails (a folder, a file that vanished,
    garbage a parser trips on) the answer is 0.0, "not mine", as the readers always did.
    """
    try:
        return max((score(Path(p)) for p in paths), default=0.0)
    except Exception:  # noqa: BLE001 - whatever the file holds, sniff answers a number
        return 0.0


def first_matching(paths: Sequence[Path], test: Callable[[Path], bool]) -> Path | None:
    """The first path for which ``test`` is true; paths that cannot be read are passed over."""
    for p in paths:
        try:
            if test(Path(p)):
                return Path(p)
        except OSError:
            continue
    return None


def require_file(paths: Sequence[Path], test: Callable[[Path], bool], missing: str) -> Path:
    """:func:`first_matching`, or :class:`UnsupportedFile` naming the files and ``missing``.

    ``missing`` says what was looked for, e.g. ``"no XDI file (first line must start with ...)"``.
    """
    path = first_matching(paths, test)
    if path is None:
        names = ", ".join(Path(p).name for p in paths) or "(no files)"
        raise UnsupportedFile(f"{names}: {missing}")
    return path


def pick_target(paths: Sequence[Path], sniff: Callable[[Sequence[Path]], float],
                kind: str, short: str) -> tuple[Path, list[str]]:
    """The first file ``sniff`` accepts, and a warning for every other file of the measurement.

    ``kind`` completes "none of a.x, b.y is ..." (e.g. ``"a Rigaku .ras/.rasx file"``);
    ``short`` completes "b.y: not ...; left untranslated" (e.g. ``"a Rigaku file"``). The
    others are not lost: the packager ships every raw file whatever the translator read.
    """
    target = next((p for p in paths if sniff([p]) > 0), None)
    if target is None:
        raise UnsupportedFile("none of " + ", ".join(p.name for p in paths) + f" is {kind}")
    warnings = [f"{p.name}: not {short}; left untranslated (raw copy kept)" for p in paths if p != target]
    return target, warnings


# ---- header values ----------------------------------------------------------------------------

def put(d: dict[str, Any], key: str, value: Any) -> None:
    """``d[key] = value`` unless the value is missing (None or ""), so absent terms stay absent."""
    if value is not None and value != "":
        d[key] = value


def text(v: Any) -> str | None:
    """Stripped text cut to :data:`MAX_STR` UTF-8 bytes (never inside a character), or None if blank."""
    s = ("" if v is None else str(v)).strip()
    return s.encode("utf-8")[:MAX_STR].decode("utf-8", "ignore") or None


def num(v: Any) -> float | None:
    """A finite float, or None for blanks, text, NaN and infinities (not JSON, not metadata)."""
    try:
        f = float(str(v).strip())
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def to_int(v: Any, parse: Callable[[Any], float | None] = num) -> int | None:
    """An integer if ``parse(v)`` gives a whole number, else None (``"12.5"`` is not a count).

    ``parse`` is the format's number reader when it has its own notation (VAMAS' 1E37 "no
    value", JEOL's "mantissa exponent" pairs).
    """
    f = parse(v)
    return int(f) if f is not None and float(f).is_integer() else None
