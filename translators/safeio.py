"""Careful readers for hostile files: size caps, zip-bomb checks, XML without entities.

Translators read whole vendor files into memory; these helpers turn every way that can go
wrong into a :class:`CorruptFile` that names the file and what was wrong.
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from translators.contract import CorruptFile

MAX_FILE_BYTES = 2 << 30     # a single member or file we are willing to hold in memory
MAX_ZIP_TOTAL = 4 << 30      # sum of uncompressed member sizes
MAX_ZIP_RATIO = 200          # compression ratio above which a member looks like a bomb


def read_head(path: Path, n: int = 4096) -> bytes:
    """First ``n`` bytes, or b'' if unreadable (for sniff, which must never raise)."""
    try:
        with Path(path).open("rb") as fh:
            return fh.read(n)
    except OSError:
        return b""


_TEXT_LEAD = b"\xef\xbb\xbf\r\n\t "


def text_start(data: bytes) -> bytes:
    """Text without a UTF-8 BOM and blank leading lines (sniffers and readers of text formats)."""
    return data.lstrip(_TEXT_LEAD)


def read_text_head(path: Path, n: int = 4096) -> bytes:
    """Like :func:`read_head` for text formats: BOM and blank leading lines skipped."""
    return text_start(read_head(path, n + 256))[:n]


def read_bytes(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    try:
        size = path.stat().st_size
        if size > limit:
            raise CorruptFile(f"{path.name}: {size} bytes is more than the {limit} bytes this reader accepts")
        data = path.read_bytes()
    except OSError as exc:
        raise CorruptFile(f"{path.name}: cannot be read: {exc.strerror or exc}") from None
    if not data:
        raise CorruptFile(f"{path.name}: the file is empty")
    return data


_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
_JA_HINT = re.compile("[\u3000-\u30ff\uff01-\uff5e\u2103]")  # kana, CJK punctuation, fullwidth, ℃
# what a Western text decoded as cp932 produces: private-use code points, halfwidth katakana
# (JEOL's own "ｵm" for µm excepted)
_JA_JUNK = re.compile("[\ue000-\uf8ff]|[\uff61-\uff9f](?!m)")
_CJK = "\u3040-\u30ff\u4e00-\u9fff"
_CJK_BETWEEN_LATIN = re.compile(f"(?<=[A-Za-z])[{_CJK}](?=[A-Za-z])")
_CJK_CHAR = re.compile(f"[{_CJK}]")


def _legacy(data: bytes) -> tuple[str, str]:
    """Shift-JIS (cp932) for Japanese instruments or cp1252 for European software, then Latin-1.

    cp932 decodes many Western texts too (a lone 'é' pairs with the next letter into a kanji),
    so it is chosen only when the result looks Japanese: no junk (private-use code points,
    stray halfwidth katakana), and kana, CJK punctuation or fullwidth forms, or kanji that are
    mostly not wedged between two Latin letters (``Temp駻ature`` is a misread ``Température``).
    """
    try:
        ja = data.decode("cp932")
    except UnicodeDecodeError:
        ja = None
    if ja is not None and not _JA_JUNK.search(ja):
        wedged = len(_CJK_BETWEEN_LATIN.findall(ja))
        if _JA_HINT.search(ja) or len(_CJK_CHAR.findall(ja)) > 2 * wedged:
            return ja, "cp932"
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def decode_text(data: bytes, encodings: tuple[str, ...] | None = None, where: str = "") -> tuple[str, str]:
    """Text and the encoding used: a BOM, else UTF-8, else the vendor's legacy code page.

    ``where`` (file or member name) records the encoding for the translation report.
    ``encodings`` forces an order of candidates instead (the last one decodes with replacement).
    """
    from translators.progress import encoding_used

    text, enc = _decode(data, encodings)
    encoding_used(where, enc)
    return text, enc


def _decode(data: bytes, encodings: tuple[str, ...] | None) -> tuple[str, str]:
    if encodings:
        for enc in encodings:
            try:
                return data.decode(enc), enc
            except UnicodeDecodeError:
                continue
        return data.decode(encodings[-1], errors="replace"), encodings[-1] + "+replace"
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(enc), enc
            except UnicodeDecodeError:
                return data[len(bom):].decode("utf-8", errors="replace"), enc + "+replace"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return _legacy(data)


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")
_CLEAN_PREFIX = re.compile(r"^[\t -~]*")
_LATIN_HIGH = re.compile("[\x80-\xff\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013-\u203a\u20ac\u2122]")


def _junk(line: str) -> bool:
    """Bytes that are not text: control characters, or a line mostly of Latin-1 high characters
    (how random bytes decode; real Western text has a few accents, Japanese text none of these)."""
    s = line.rstrip("\r\n")
    return bool(_CONTROL.search(s)) or (len(s) >= 3 and len(_LATIN_HIGH.findall(s)) * 4 >= len(s))


def without_trailing_junk(text: str, where: str) -> str:
    """The text without bytes appended after its last line (a copy tool's padding, a crashed write).

    Trailing junk lines are dropped; a last real line with junk glued to it is cut where its
    printable ASCII ends. The report says how many characters were ignored.
    """
    lines = text.splitlines(keepends=True)
    cut = 0
    # random bytes split by a stray newline leave short printable fragments between junk lines
    while len(lines) > 1 and len(lines[-1].strip()) <= 8 and _junk(lines[-2]) and not _junk(lines[-1]):
        cut += len(lines.pop())
    while lines and _junk(lines[-1]):
        last = lines.pop()
        keep = _CLEAN_PREFIX.match(last).group(0)
        if len(keep.strip()) >= 1 and not _junk(keep) and len(keep) < len(last.rstrip("\r\n")) \
                and (not lines or lines[-1].endswith(("\n", "\r"))) and _looks_like_previous(keep, lines):
            lines.append(keep)
            cut += len(last) - len(keep)
            break
        cut += len(last)
        while len(lines) > 1 and len(lines[-1].strip()) <= 8 and _junk(lines[-2]) and not _junk(lines[-1]):
            cut += len(lines.pop())
    if not cut:
        return text
    from translators.progress import warn

    warn(f"{where}: {cut} characters after the last line of data are not text and were ignored "
         "(trailing bytes or padding)")
    return "".join(lines)


def _looks_like_previous(keep: str, lines: list[str]) -> bool:
    """A cut line is kept only if it has as many fields as the line before (a data row)."""
    prev = next((ln for ln in reversed(lines) if ln.strip()), "")
    return len(keep.split()) == len(prev.split()) and len(keep.split(",")) == len(prev.split(","))


def is_zip(path: Path) -> bool:
    return read_head(path, 4) == b"PK\x03\x04"


def open_zip(path: Path) -> zipfile.ZipFile:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise CorruptFile(f"{path.name}: not a readable zip archive ({exc}); truncated or damaged?") from None
    total = 0
    for info in zf.infolist():
        total += info.file_size
        if info.file_size > MAX_FILE_BYTES or total > MAX_ZIP_TOTAL:
            raise CorruptFile(f"{path.name}: member {info.filename!r} unpacks to more than we accept")
        if info.compress_size and info.file_size / info.compress_size > MAX_ZIP_RATIO and info.file_size > 1 << 24:
            raise CorruptFile(f"{path.name}: member {info.filename!r} looks like a zip bomb")
    return zf


def zip_member(zf: zipfile.ZipFile, name: str, archive: str) -> bytes:
    try:
        return zf.read(name)
    except KeyError:
        raise CorruptFile(f"{archive}: member {name!r} is missing") from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise CorruptFile(f"{archive}: member {name!r} is damaged ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - zlib.error and friends from a bit-flipped stream
        raise CorruptFile(f"{archive}: member {name!r} is damaged ({type(exc).__name__}: {exc})") from None


def parse_xml(data: bytes, where: str) -> ET.Element:
    """Parse XML that may not declare entities (no billion-laughs, no external entities).

    Bytes after the root element's end tag (padding, a truncated copy's junk) are ignored with
    a warning in the report; a document that is damaged inside is still CorruptFile.
    """
    data = text_start(data)  # a BOM or blank lines before <?xml ...?> (a re-saved file)
    head = data[:4096]
    if b"<!ENTITY" in head or b"<!DOCTYPE" in head:
        raise CorruptFile(f"{where}: XML with DOCTYPE/ENTITY declarations is not accepted")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        first = exc
    recoded = _recoded(data, where)
    if recoded is not None:
        return recoded
    root = parse_until_root_end(data, where)
    if root is not None:
        return root
    raise CorruptFile(f"{where}: not well-formed XML ({first}); truncated or damaged?") from None


def _recoded(data: bytes, where: str) -> ET.Element | None:
    """XML that declares (or defaults to) UTF-8 but was saved in a legacy code page."""
    try:
        data.decode("utf-8")
        return None  # valid UTF-8: the problem is elsewhere
    except UnicodeDecodeError:
        pass
    text, enc = decode_text(data, where=where)
    body = re.sub(r"^<\?xml[^>]*\?>", '<?xml version="1.0" encoding="UTF-8"?>', text.lstrip("\ufeff"))
    try:
        root = ET.fromstring(body.encode("utf-8"))
    except ET.ParseError:
        return None
    from translators.progress import warn

    warn(f"{where}: the XML is not valid UTF-8 as declared; read as {enc}")
    return root


def parse_until_root_end(data: bytes, where: str) -> ET.Element | None:
    """The document up to the root element's end tag, if bytes follow it; None if that fails too."""
    head = data[:1 << 16]
    m = re.search(rb"<([A-Za-z_][\w.:-]*)", re.sub(rb"<\?.*?\?>|<!--.*?-->", b"", head, flags=re.S))
    end = data.rfind(b"</" + m.group(1) + b">") if m else -1
    if end > 0:
        stop = data.index(b">", end) + 1
        if data[stop:].strip():
            try:
                root = ET.fromstring(data[:stop])
            except ET.ParseError:
                pass
            else:
                from translators.progress import warn

                warn(f"{where}: {len(data) - stop} bytes after the closing </{m.group(1).decode()}> were ignored "
                     "(trailing bytes or padding)")
                return root
    return None


def local(tag: str) -> str:
    """Tag without its '{namespace}'."""
    return tag.rsplit("}", 1)[-1]


KEY_ATTRS = ("LogicName", "AxisName", "Name", "axis", "name")


def _key_attr(els: list[ET.Element]) -> str | None:
    for attr in KEY_ATTRS:
        vals = [e.attrib.get(attr) for e in els]
        if all(vals) and len(set(vals)) == len(vals):
            return attr
    return None


def xml_to_dict(el: ET.Element) -> Any:
    """Element tree -> nested dict with the vendor's names kept verbatim.

    Attributes become '@attr'; text beside children becomes '#text'. Repeated sibling tags
    that carry a distinguishing attribute (LogicName, AxisName, Name, axis) become
    'Tag[value]' keys, so paths read like ``Drives/InfoData[Chi]/Position/@Value``;
    other repeated tags become lists.
    """
    node: dict[str, Any] = {f"@{local(k)}": v for k, v in el.attrib.items()}
    groups: dict[str, list[ET.Element]] = {}
    for child in el:
        groups.setdefault(local(child.tag), []).append(child)
    for tag, els in groups.items():
        if len(els) == 1:
            node[tag] = xml_to_dict(els[0])
            continue
        attr = _key_attr(els)
        if attr:
            for e in els:
                node[f"{tag}[{e.attrib[attr]}]"] = xml_to_dict(e)
        else:
            node[tag] = [xml_to_dict(e) for e in els]
    text = (el.text or "").strip()
    if not node:
        return text
    if text:
        node["#text"] = text
    return node
