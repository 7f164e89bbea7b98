"""One property test per translator family: generated variants of every real sample of the family
(CRLF line ends, a BOM and blank leading lines, re-encoded text, zero padding and random trailing
bytes, plus family-specific extra or missing sections) must each still be recognised by the same
translator and give ``ok`` or ``partial`` with metadata, never a failure."""
from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from _helpers import SAMPLES, all_sample_files
from translators import progress
from translators.registry import load_registry
from translators.writer import write_outputs

VARIANTS = SAMPLES.parent / "samples-variants"
_REG = load_registry()


def _files() -> list[Path]:
    files = all_sample_files()
    if VARIANTS.is_dir():
        files += sorted(p for p in VARIANTS.resolve().rglob("*") if p.is_file() and p.name != "SOURCES.md")
    return files


def _family(p: Path) -> str | None:
    t, _ = _REG.choose([p])
    return t.name if t else None


FAMILIES: dict[str, list[Path]] = {}
for _p in _files():
    _f = _family(_p)
    if _f:
        FAMILIES.setdefault(_f, []).append(_p)


def _is_text(data: bytes) -> bool:
    head = data[:4096]
    return b"\0" not in head and not head.startswith((b"PK", b"\x89HDF", b"II*", b"MM\0*"))


def _specific(name: str, data: bytes) -> list[tuple[str, bytes]]:
    """Family-specific variants: sections a real file of another software version adds or omits."""
    text = data.decode("latin-1")
    nl = "\r\n" if "\r\n" in text else "\n"
    out = []
    if name.endswith((".msa", ".emsa")):
        out.append(("missing optional keywords", re.sub(r"(?m)^#(TITLE|OWNER|##?[A-Za-z].*?)\s*:.*\r?\n", "", text).encode("latin-1")))
        out.append(("repeated keyword", text.replace("#SPECTRUM", f"#COMMENT     : second{nl}#COMMENT     : third{nl}#SPECTRUM", 1).encode("latin-1")))
    if name.endswith(".xdi"):
        out.append(("missing optional fields", re.sub(r"(?mi)^#\s*(Facility|Beamline|Mono|Sample)\.[^\n]*\n", "", text).encode("latin-1")))
        out.append(("extra namespace", text.replace(nl, f"{nl}# Extra.note: added by a newer writer{nl}", 1).encode("latin-1")))
    if name.endswith(".xy") and "# Region:" in text:
        i = text.index("# Region:")
        j = text.find("# Region:", i + 1)
        block = text[i:j if j > 0 else len(text)]
        out.append(("extra region", (text.rstrip() + nl + nl + block.replace("# Region:", "# Region: copy of", 1)).encode("latin-1")))
    return out


def variants(path: Path) -> list[tuple[str, bytes]]:
    data = path.read_bytes()
    rng = random.Random(path.name)
    out = [("zero padding", data + b"\0" * 512),
           ("random trailing bytes", data + bytes(rng.randrange(256) for _ in range(97)))]
    if _is_text(data):
        crlf = data.replace(b"\r\n", b"\n")
        out.append(("CRLF" if crlf == data else "LF", data.replace(b"\n", b"\r\n") if crlf == data else crlf))
        out.append(("BOM and blank leading lines", b"\xef\xbb\xbf\r\n\r\n" + data))
        try:
            txt = data.decode("utf-8")
            if any(ord(c) > 127 for c in txt):
                out.append(("re-encoded cp932", txt.encode("cp932")))
        except (UnicodeDecodeError, UnicodeEncodeError):
            try:
                out.append(("re-encoded UTF-8", data.decode("cp932").encode("utf-8")))
            except UnicodeDecodeError:
                out.append(("re-encoded UTF-8", data.decode("latin-1").encode("utf-8")))
        out += _specific(path.name.lower(), data)
    return out


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_generated_variants_still_translate(family: str, tmp_path: Path) -> None:
    translator = _REG.get(family)
    problems = []
    n = 0
    for src in FAMILIES[family]:
        original = _family(src)
        try:
            progress.translate(translator, [src])
        except Exception:  # noqa: BLE001 - a file that needs its companions (JEOL AES 'id'), HDF4
            continue
        for label, blob in variants(src):
            p = tmp_path / f"{n}" / src.name
            p.parent.mkdir()
            p.write_bytes(blob)
            n += 1
            chosen = _family(p)
            if chosen != original:
                problems.append(f"{src.name} [{label}]: recognised by {chosen}, not {original}")
                continue
            try:
                result, error = progress.translate(translator, [p])
            except Exception as exc:  # noqa: BLE001 - collected, reported all at once
                problems.append(f"{src.name} [{label}]: {type(exc).__name__}: {exc}"[:300])
                continue
            rep = write_outputs(result, result.vocabulary or translator.vocabulary(), [p], p.parent / "out",
                                translator=translator.name, version=translator.version, error=error)
            if rep["status"] not in ("ok", "partial") or not (rep["counts"]["mapped_terms"] or rep["counts"]["tables"]):
                problems.append(f"{src.name} [{label}]: status {rep['status']}, nothing mapped")
    assert n >= 2 or family in ("nexus",)
    assert not problems, "\n".join(problems)
