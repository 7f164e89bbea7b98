"""SPECS spectra: SpecsLab Prodigy XY exports and SpecsLab2 XML files, one vocabulary."""
from __future__ import annotations

from translators.specs.xml_specs import SpecsXmlTranslator
from translators.specs.xy import SpecsXyTranslator

__all__ = ["SpecsXmlTranslator", "SpecsXyTranslator"]
