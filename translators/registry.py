"""Find translators through the ``labedge.translators`` entry-point group.

Built-in translators are registered in our own ``pyproject.toml`` exactly like a third-party
wheel would register one, so a PyInstaller build and a plug-in are found the same way and
no code ever looks for translators by file path. A plug-in that fails to import, to
construct, or to honour the contract is recorded with its error and skipped; it never stops
the others from loading.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

from translators.contract import ENTRY_POINT_GROUP, Translator

_REQUIRED_ATTRS = ("name", "version", "description")
_REQUIRED_METHODS = ("vocabulary", "sniff", "translate")


class UnknownTranslator(LookupError):
    """A translator name was asked for that the registry does not have (or that failed to load)."""


@dataclass
class RegistryEntry:
    """One entry point: what it is, where it came from, and whether it loaded."""

    name: str
    target: str  # "module:attr" of the entry point
    distribution: str | None
    translator: Translator | None = None
    error: str | None = None

    @property
    def version(self) -> str | None:
        return getattr(self.translator, "version", None) if self.translator else None

    @property
    def description(self) -> str:
        return getattr(self.translator, "description", "") if self.translator else ""

    @property
    def ok(self) -> bool:
        return self.translator is not None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "description": self.description,
                "entry_point": self.target, "distribution": self.distribution,
                "loaded": self.ok, "error": self.error}


@dataclass
class Registry:
    entries: list[RegistryEntry] = field(default_factory=list)

    def translators(self) -> list[Translator]:
        return [e.translator for e in self.entries if e.translator is not None]

    def get(self, name: str) -> Translator:
        for e in self.entries:
            if e.name == name:
                if e.translator is None:
                    raise UnknownTranslator(f"translator {name!r} failed to load: {e.error}")
                return e.translator
        known = ", ".join(sorted(e.name for e in self.entries if e.ok)) or "none"
        raise UnknownTranslator(f"no translator named {name!r}; installed: {known}")

    def choose(self, paths: Sequence[Path]) -> tuple[Translator | None, list[tuple[str, float]]]:
        """Ask every translator's ``sniff``; return the most confident one (> 0) and all scores.

        ``sniff`` must never raise, but a plug-in may be wrong about that: an exception
        counts as 0 so one bad plug-in cannot stop auto-detection.
        """
        scores: list[tuple[str, float]] = []
        best: Translator | None = None
        best_score = 0.0
        for t in self.translators():
            try:
                score = float(t.sniff(paths))
            except Exception:  # noqa: BLE001 - a misbehaving plug-in must not break detection
                score = 0.0
            if score != score:  # NaN
                score = 0.0
            score = max(0.0, min(1.0, score))
            scores.append((t.name, score))
            if score > best_score:
                best, best_score = t, score
        return best, scores


def _check_contract(obj: Any) -> str | None:
    missing = [a for a in _REQUIRED_ATTRS if not isinstance(getattr(obj, a, None), str)]
    missing += [m for m in _REQUIRED_METHODS if not callable(getattr(obj, m, None))]
    if missing:
        return "does not follow the translator contract; missing or wrong: " + ", ".join(missing)
    return None


def _load_entry(ep: metadata.EntryPoint) -> RegistryEntry:
    dist = getattr(getattr(ep, "dist", None), "name", None)
    entry = RegistryEntry(name=ep.name, target=ep.value, distribution=dist)
    try:
        obj = ep.load()
        # An entry point may name a class (constructed here) or a ready instance.
        translator = obj() if isinstance(obj, type) else obj
    except BaseException as exc:  # noqa: BLE001 - SystemExit from a plug-in's import must not kill us
        if isinstance(exc, KeyboardInterrupt):
            raise
        entry.error = f"could not load {ep.value}: {type(exc).__name__}: {exc}"
        return entry
    problem = _check_contract(translator)
    if problem:
        entry.error = f"{ep.value} {problem}"
        return entry
    if translator.name != ep.name:
        entry.error = (f"entry point {ep.name!r} names a translator called {translator.name!r}; "
                       "the entry-point name must equal Translator.name")
        return entry
    entry.translator = translator
    return entry


def load_registry(group: str = ENTRY_POINT_GROUP) -> Registry:
    """Load every translator registered in ``group`` (fresh each call: plug-ins may change)."""
    reg = Registry()
    seen: dict[str, RegistryEntry] = {}
    eps = sorted(metadata.entry_points(group=group), key=lambda e: (e.name, e.value))
    for ep in eps:
        if ep.name in seen:
            first = seen[ep.name]
            if first.target == ep.value:
                continue  # the same distribution found twice on sys.path (editable + build dir)
            reg.entries.append(RegistryEntry(
                name=ep.name, target=ep.value, distribution=getattr(getattr(ep, "dist", None), "name", None),
                error=f"duplicate translator name {ep.name!r}: {first.target} was loaded first"))
            continue
        entry = _load_entry(ep)
        seen[ep.name] = entry
        reg.entries.append(entry)
    return reg
