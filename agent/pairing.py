"""The pairing seam: which sample sheet (RDE invoice) goes with a measurement.

The pipeline asks a ``Pairer`` before packaging. The sheet subsystem (``agent.sheets``)
provides the real one; ``UnpairedPairer`` is what runs without it: every measurement goes out
with a minimal invoice marked unpaired.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from agent.config import UNKNOWN_OWNER, InstrumentConfig
from agent.measurement import Measurement

PAIRED, UNPAIRED, HOLD = "paired", "unpaired", "hold"

MINIMAL_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://labedge.example/templates/minimal/invoice.schema.json",
    "description": "labedge minimal invoice (no sample sheet)",
    "type": "object",
    "required": ["custom"],
    "properties": {
        "custom": {"type": "object", "label": {"ja": "固有情報", "en": "Custom Information"},
                   "required": [], "properties": {}},
    },
}


@dataclass
class Pairing:
    status: str                        # PAIRED, UNPAIRED or HOLD
    invoice: dict[str, Any]
    schema: dict[str, Any]
    sheet_id: str | None = None
    source: str = "none"               # "active-sheet", "sheet-file", "picked", "none"
    details: dict[str, Any] = field(default_factory=dict)


class Pairer(Protocol):
    def bind(self, resubmit: Callable[[Measurement], None]) -> None:
        """Give the pairer a way to send a held measurement back to the pipeline later."""

    def pair(self, measurement: Measurement, instrument: InstrumentConfig) -> Pairing: ...


def minimal_invoice(measurement: Measurement, owner_id: str = UNKNOWN_OWNER) -> dict[str, Any]:
    return {
        "datasetId": "",
        "basic": {
            "dateSubmitted": time.strftime("%Y-%m-%d"),
            "dataOwnerId": owner_id,
            "dataName": measurement.name[:255] or "measurement",
            "instrumentId": None,
            "experimentId": None,
            "description": None,
        },
        "custom": {},
    }


class UnpairedPairer:
    """Sends every measurement with a minimal invoice marked unpaired."""

    def __init__(self, owner_id: str = UNKNOWN_OWNER) -> None:
        self.owner_id = owner_id

    def bind(self, resubmit: Callable[[Measurement], None]) -> None:
        pass

    def pair(self, measurement: Measurement, instrument: InstrumentConfig) -> Pairing:
        return Pairing(status=UNPAIRED, invoice=minimal_invoice(measurement, self.owner_id), schema=MINIMAL_SCHEMA)
