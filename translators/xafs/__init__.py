"""XAFS translators: KEK-PF 9809 text, XDI 1.0 and Athena projects, one shared vocabulary."""
from __future__ import annotations

from translators.xafs.athena import AthenaTranslator
from translators.xafs.pf9809 import Xafs9809Translator
from translators.xafs.xdi import XdiTranslator

__all__ = ["AthenaTranslator", "Xafs9809Translator", "XdiTranslator"]
