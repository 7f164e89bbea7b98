"""Vocabulary shared by the SPECS .xy and .xml readers (value helpers: ``translators.common``)."""
from __future__ import annotations

# SpecsLab's analyser-mode names -> the words the vocabulary stores
MODES = {"FixedAnalyzerTransmission": "fixed analyser transmission (FAT)",
         "FixedRetardingRatio": "fixed retard ratio (FRR)",
         "FixedEnergies": "fixed energies (snapshot)", "SnapshotFAT": "snapshot (FAT)",
         "ConstantFinalState": "constant final state (CFS)",
         "ConstantInitialState": "constant initial state (CIS)"}
