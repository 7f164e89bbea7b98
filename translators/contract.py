"""The contract every translator follows, built-in or plug-in.

A translator is a small object found through the ``labedge.translators`` entry-point group.
It reads vendor files and returns a :class:`TranslationResult`; it never writes files itself.
The framework (``translators.writer``) turns the result into the RDE layout and stamps
provenance, so each translator stays a parser plus a vocabulary table.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

#: Entry-point group scanned by the registry; third-party wheels use the same one.
ENTRY_POINT_GROUP = "labedge.translators"


class TranslatorError(Exception):
    """A file could not be translated; the message names the file and what was wrong."""


class UnsupportedFile(TranslatorError):
    """The file is not of this translator's format (after sniff said it might be)."""


class CorruptFile(TranslatorError):
    """The file is of this format but truncated, damaged or inconsistent."""


@dataclass
class Table:
    """Numeric columns for ``structured/<name>.csv``; one unit per column (None if unitless)."""

    name: str
    columns: dict[str, Sequence[float] | Any]  # column name -> 1-D array-like, equal lengths
    units: dict[str, str | None] = field(default_factory=dict)


@dataclass
class Array:
    """A large array for ``structured/<name>.h5`` (gzip), with its metadata as attributes."""

    name: str
    data: Any  # numpy.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)
    axes: dict[str, dict[str, Any]] = field(default_factory=dict)  # axis name -> {scale, offset, unit, size}


@dataclass
class Preview:
    """What the thumbnail shows: an image array, or x/y series to plot."""

    image: Any = None  # 2-D (or HxWx3) numpy array
    x: Any = None
    y: Any = None  # 1-D, or a list of 1-D series
    x_label: str = ""
    y_label: str = ""
    title: str = ""


@dataclass
class TranslationResult:
    """What one translator extracted from one measurement.

    ``constant`` and ``variable`` use the translator's vocabulary keys (the keys of its
    ``metadata-def.json``); values are plain JSON values in the vocabulary's unit.
    ``original`` keeps every vendor key verbatim (nested dicts allowed), mapped or not.
    """

    constant: dict[str, Any] = field(default_factory=dict)
    variable: list[dict[str, Any]] = field(default_factory=list)
    original: dict[str, Any] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    arrays: list[Array] = field(default_factory=list)
    preview: Preview | None = None
    warnings: list[str] = field(default_factory=list)
    #: Optional per-result vocabulary, for translators configured by data (generic-text);
    #: when None the writer uses ``translator.vocabulary()``.
    vocabulary: dict[str, Any] | None = None
    #: Vendor keys (paths in ``original``) a translator that maps in code has read, so the
    #: report's mapped/unmapped counts are true; vocabulary-mapped keys are found by themselves.
    used_keys: list[str] = field(default_factory=list)
    #: Text encoding used per file or member (``translators.safeio.decode_text`` records it).
    encodings: dict[str, str] = field(default_factory=dict)
    #: Optional short stem for output files (``structured/<stem>.csv`` etc.); default: first raw file's stem.
    stem: str | None = None


@runtime_checkable
class Translator(Protocol):
    """A format family's reader. Instances must be cheap to construct."""

    name: str  # short id, e.g. "rigaku-ras"; also the folder name
    version: str
    description: str

    def vocabulary(self) -> dict[str, Any]:
        """The RDE metadata-def.json of this translator (name.ja/en, schema, unit, originalName...)."""
        ...

    def sniff(self, paths: Sequence[Path]) -> float:
        """Confidence 0..1 that these files are this translator's format. Never raises; reads little."""
        ...

    def translate(self, paths: Sequence[Path]) -> TranslationResult:
        """Read the files and return the result; raise a TranslatorError subclass on bad input."""
        ...


def load_vocabulary(package_file: str) -> dict[str, Any]:
    """Read the ``metadata-def.json`` that sits beside a translator module.

    Use as ``load_vocabulary(__file__)``; the file is package data, so it works in a wheel
    and in a PyInstaller build alike.
    """
    path = Path(package_file).with_name("metadata-def.json")
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)
