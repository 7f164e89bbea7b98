"""What a translation has read so far, so the framework can keep it when a parser stops.

A translator that has read a header must never end in a hard failure: the worker starts a
:class:`Progress` before calling ``translate`` and, if ``translate`` raises after
:func:`header_read` was called, writes what was read as a ``partial`` result with the error
in the report. The shared helpers (``mapping.apply_vocabulary``, ``safeio.decode_text``)
record their part automatically, so most translators get this rule without code of their
own; a parser with a header of its own calls :func:`header_read` once it has it.

One translation runs per worker process at a time, so a module-level record is enough.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping


@dataclass
class Progress:
    original: dict[str, Any] = field(default_factory=dict)   # vendor keys read so far (verbatim)
    constant: dict[str, Any] = field(default_factory=dict)   # vocabulary terms mapped so far
    used_keys: set[str] = field(default_factory=set)         # vendor keys a vocabulary term read
    encodings: dict[str, str] = field(default_factory=dict)  # file/member -> text encoding used
    warnings: list[str] = field(default_factory=list)        # from the shared readers (trailing bytes...)
    header: bool = False
    vocabulary: dict[str, Any] | None = None                 # for translators configured by data

    def as_result(self, error: str) -> Any:
        from translators.contract import TranslationResult

        return self.stamp(TranslationResult(constant=dict(self.constant), original=dict(self.original),
                                            warnings=[error], vocabulary=self.vocabulary))

    def stamp(self, result: Any) -> Any:
        """Hand the keys used and the encodings found to the result (the writer reads only the result)."""
        result.used_keys = sorted(set(result.used_keys) | self.used_keys)
        result.encodings = {**self.encodings, **result.encodings}
        result.warnings = [w for w in self.warnings if w not in result.warnings] + list(result.warnings)
        return result


_current: Progress | None = None


def begin() -> Progress:
    """Start a fresh record (the worker, once per translation)."""
    global _current
    _current = Progress()
    return _current


def current() -> Progress | None:
    return _current


def header_read(original: Mapping[str, Any], constant: Mapping[str, Any] | None = None,
                vocabulary: dict[str, Any] | None = None) -> None:
    """The vendor header is read: from here on an exception keeps this as a partial result.
    ``vocabulary``: the result's own vocabulary, for translators configured by data (generic-text)."""
    if _current is None:
        return
    if vocabulary is not None:
        _current.vocabulary = vocabulary
    _current.original.update(original)
    if constant:
        _current.constant.update(constant)
    _current.header = bool(_current.original or _current.constant)


def mapped(source: Mapping[str, Any], constant: Mapping[str, Any], used: Iterable[str]) -> None:
    """A vocabulary was applied to a header: remember the vendor keys, the terms and the keys used."""
    if _current is None:
        return
    _current.used_keys.update(used)
    for k, v in source.items():
        _current.original.setdefault(k, v)
    for k, v in constant.items():
        _current.constant.setdefault(k, v)
    _current.header = _current.header or bool(source)


def warn(message: str) -> None:
    """A shared reader tolerated something (trailing bytes, a BOM): the report must say so."""
    if _current is not None and message not in _current.warnings:
        _current.warnings.append(message)


def encoding_used(where: str, encoding: str) -> None:
    if _current is not None and where:
        _current.encodings[where] = encoding


def translate(translator: Any, paths: Any) -> tuple[Any, str | None]:
    """Run ``translator.translate(paths)`` under a fresh record.

    Returns ``(result, None)``, or ``(partial result, error text)`` when it raised after
    :func:`header_read`; re-raises when nothing was read (the caller reports a failure).
    MemoryError and RecursionError are re-raised too: the heap or stack is not to be trusted.
    """
    prog = begin()
    try:
        result = translator.translate(paths)
    except (MemoryError, RecursionError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - any parser error after the header keeps the header
        if not prog.header:
            raise
        name = getattr(translator, "name", "translator")
        kind = "" if _is_clean(exc) else f"{type(exc).__name__}: "
        error = (f"{name} stopped after reading the header: {kind}{exc}; "
                 "the header is kept, the rest of the file is only in raw/")
        return prog.as_result(error), error
    return prog.stamp(result), None


def _is_clean(exc: Exception) -> bool:
    from translators.contract import TranslatorError

    return isinstance(exc, TranslatorError)


class Tracked(dict):
    """A vendor-key dict that records which keys a code-mapping translator read (non-blank), so the
    report's mapped/unmapped counts are true without a list kept by hand. ``prefix`` is the dict's
    path in ``original`` (e.g. ``"para"``)."""

    def __init__(self, data: Mapping[str, Any], prefix: str = "") -> None:
        super().__init__(data)
        self._prefix = prefix + "/" if prefix else ""

    def _note(self, key: Any, value: Any) -> Any:
        if _current is not None and value is not None and value != "":
            _current.used_keys.add(f"{self._prefix}{key}")
        return value

    def get(self, key: Any, default: Any = None) -> Any:  # type: ignore[override]
        return self._note(key, super().get(key, default)) if key in self else default

    def __getitem__(self, key: Any) -> Any:
        return self._note(key, super().__getitem__(key))


def track(data: Mapping[str, Any], prefix: str = "") -> Tracked:
    return Tracked(data, prefix)
