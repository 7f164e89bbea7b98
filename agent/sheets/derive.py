"""Sheet fields whose value the measurement itself gives: prefilled, and the user's value wins.

The official NIMS templates' invoices ask for the measurement date (``measurement_measured_date``).
A sheet is often filled before the measurement (the active sheet applies to the next files), so the
page says "empty = the measurement's date", and the invoice takes the date of the measurement's
newest file (an instrument writes its file when the measurement ends) when the field was left
empty. For a measurement already waiting for its sheet, the page shows that date prefilled.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from agent.measurement import Measurement

#: custom field key -> the placeholder saying what an empty field becomes
DERIVABLE: dict[str, dict[str, str]] = {
    "measurement_measured_date": {"ja": "空欄なら測定日（ファイルの日付）", "en": "empty = the measurement's date (its file's)"},
}


def measured_values(m: Measurement | None) -> dict[str, Any]:
    """custom key -> value derived from the measurement's files (local time, as the instrument's clock)."""
    times = [f.mtime_ns for f in (m.files if m is not None else []) if isinstance(f.mtime_ns, int)]
    if not times:
        return {}
    return {"measurement_measured_date": dt.datetime.fromtimestamp(max(times) / 1e9).date().isoformat()}
