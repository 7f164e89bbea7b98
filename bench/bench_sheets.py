"""Sample-sheet costs per measurement: check a sheet, build + check its invoice, render the page.

Prints figures and a ratio against json.loads+json.dumps of the same sheet document in the same process
(the floor any sheet handling pays). Run: .venv/bin/python bench/bench_sheets.py
"""
from __future__ import annotations

import json
import time

from agent.sheets.form import form_model, validate_values
from agent.sheets.html import render_sheet
from agent.sheets.invoice import build_invoice, parse_sheet
from agent.sheets.templates import load_template

VALUES = {"basic.dateSubmitted": "2026-11-20", "sample.names": "W-tip-07", "sample.composition": "W",
          "custom.acceleration_voltage": 30, "custom.beam_current": 48, "custom.mask_inner_diameter": 1.5,
          "custom.mask_outer_diameter": 5.0, "custom.processing_time": 900, "custom.ion_species": "Ga"}
DOC = json.dumps({"format": "labedge-sheet", "version": 1, "template": "fib-atom-probe", "values": VALUES}).encode()


def per_second(fn, seconds: float = 1.0) -> float:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
    schema = load_template("fib-atom-probe")
    model = form_model("fib-atom-probe", schema)
    ref = per_second(lambda: json.dumps(json.loads(DOC)))
    rows = [
        ("parse+check a .sheet.json", per_second(lambda: parse_sheet(DOC, "bench"))),
        ("check values (form rules)", per_second(lambda: validate_values(model, VALUES))),
        ("build+check invoice.json", per_second(
            lambda: build_invoice(schema, VALUES, data_name="x.tif", default_owner_id="0" * 56))),
        ("render the HTML page", per_second(lambda: render_sheet("fib-atom-probe"))),
    ]
    print(f"reference json.loads+dumps of the sheet: {ref:,.0f}/s")
    for name, rate in rows:
        print(f"{name:<28} {rate:>10,.0f}/s  {1e3 / rate:7.3f} ms  ratio to reference {ref / rate:6.1f}x slower")


if __name__ == "__main__":
    main()
