"""XAFS-only helpers shared by the 9809, XDI and Athena readers (generic ones: ``translators.common``)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from translators.safeio import decode_text as _detect_text, without_trailing_junk
from translators.contract import CorruptFile

HC_EV_ANGSTROM = 12398.419843  # h*c in eV·Å (CODATA 2018)
MAX_TEXT_BYTES = 256 * 1024 * 1024  # XAFS text files are kB..MB; refuse absurd inputs


def head(path: Path, n: int = 4096) -> bytes:
    """The first bytes of a text file, a BOM and blank leading lines skipped (a re-saved file)."""
    from translators.safeio import read_text_head

    return read_text_head(path, n)


def read_text(path: Path, limit: int = MAX_TEXT_BYTES) -> str:
    size = path.stat().st_size
    if size > limit:
        raise CorruptFile(f"{path.name}: {size} bytes exceeds the {limit} byte limit for XAFS text")
    text = _detect_text(path.read_bytes(), where=path.name)[0].lstrip("\ufeff")
    return without_trailing_junk(re.sub(r"^(?:[ \t]*\r?\n)+", "", text), path.name)


def float_row(path: Path, lineno: int, parts: list[str], line: str) -> list[float]:
    """One whitespace-split data row as floats; CorruptFile naming file, line and row otherwise."""
    try:
        return [float(x) for x in parts]
    except ValueError:
        raise CorruptFile(f"{path.name}: line {lineno}: data row is not numeric: {line.strip()[:60]!r}") from None


def angle_to_energy(theta_deg: Any, d_spacing: float) -> Any:
    """Bragg: E = hc / (2 d sin θ); works on floats and numpy arrays."""
    import numpy as np
    return HC_EV_ANGSTROM / (2.0 * d_spacing * np.sin(np.radians(theta_deg)))
