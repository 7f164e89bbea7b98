"""What the tray shows: the summary `labedge status` carries (agent.summary), in the user's language.

The tray computes nothing itself: it shows ``st["summary"]`` (or summarizes a status dict that lacks
one, from an older source), so tray, page and CLI can never disagree.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.summary import ATTENTION, ERROR, OFFLINE, PAUSED, STATE_WORDS, STATES, UP_TO_DATE, WORKING, shorten, summarize

__all__ = ["ATTENTION", "ERROR", "OFFLINE", "PAUSED", "STATES", "UP_TO_DATE", "WORKING", "TrayState", "tray_state"]
TOOLTIP_MAX = 127   # Windows cuts tray tooltips at 127 characters; other hosts show less anyway


@dataclass(frozen=True)
class TrayState:
    level: str                     # one of agent.summary.STATES
    title: str                     # the reason, in words
    lines: list[str] = field(default_factory=list)   # action, then detail: for the menu
    lang: str = "en"

    @property
    def tooltip(self) -> str:
        """Short: the state and the reason, cut at a word, never mid-word; the rest is in the menu."""
        text = f"labedge: {STATE_WORDS.get(self.level, {}).get(self.lang, self.level)} — {self.title}"
        return _cut(text, TOOLTIP_MAX)


_cut = shorten


def tray_state(st: dict[str, Any], lang: str = "en") -> TrayState:
    sm = st.get("summary")
    if not isinstance(sm, dict) or sm.get("state") not in STATES:
        sm = summarize(st).as_dict()
    words = sm.get("ja") if lang == "ja" and isinstance(sm.get("ja"), dict) else sm
    lines = [str(words.get("action") or "")]
    if sm.get("detail"):
        lines.append(_cut(str(sm["detail"]), 120))
    return TrayState(sm["state"], str(words.get("reason") or ""), [x for x in lines if x], lang)
