"""Issue 15: docs that must agree with the code, and derived names that keep the measurement's name."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from core_helpers import REPO, labedge

from agent.config import Config
from config import config_schema
from translators.writer import safe_name, unique_name


def _schema_keys() -> set[tuple[str, str]]:
    """(section, key) for every key the schema accepts; section "" is the top level."""
    schema = config_schema()
    out = {("", k) for k in schema["properties"]}
    for section, tag in (("upload", "[upload]"), ("web", "[web]"), ("sheets", "[sheets]"), ("remote", "[remote]")):
        out |= {(tag, k) for k in schema["properties"][section]["properties"]}
    out |= {("[[instruments]]", k) for k in schema["properties"]["instruments"]["items"]["properties"]}
    return out - {("", "upload"), ("", "web"), ("", "sheets"), ("", "remote"), ("", "instruments")}


def _readme_keys() -> set[tuple[str, str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| key | default | meaning |"):text.index("### What the agent guarantees")]
    out = set()
    for row in table.splitlines()[2:]:
        if not row.startswith("| `"):
            continue
        cell = row.split("|")[1]
        section = next((t for t in ("[[instruments]]", "[upload]", "[web]", "[sheets]", "[remote]") if t in cell), "")
        for key in re.findall(r"`([^`]+)`", cell):
            key = key.replace(section, "").strip()
            if key:
                out.add((section, key))
    return out


def test_readme_config_table_lists_exactly_the_schema_keys():
    schema, readme = _schema_keys(), _readme_keys()
    assert schema - readme == set(), f"keys the schema accepts but README's table omits: {sorted(schema - readme)}"
    assert readme - schema == set(), f"keys in README's table the schema does not accept: {sorted(readme - schema)}"


def test_translate_defaults_are_the_agents_limits():
    r = labedge("translate", "--help")
    flat = " ".join(r.stdout.split())
    assert f"default {Config.translate_timeout_seconds:g}" in flat and f"default {Config.translate_memory_mb}" in flat
    assert "same limits" not in flat


def test_performance_doc_says_what_the_worker_does():
    from translators.sandbox import MAX_REQUESTS
    text = (REPO / "docs" / "performance.md").read_text(encoding="utf-8")
    assert "exactly one request" not in text and f"up to {MAX_REQUESTS} measurements" in text


def test_broker_config_and_its_readme_agree():
    conf = (REPO / "installer" / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8")
    readme = (REPO / "installer" / "mosquitto" / "README.md").read_text(encoding="utf-8")
    header = conf.split("\n\n", 1)[0]
    assert "not a conf.d snippet" in header and "/etc/mosquitto/mosquitto.conf" in header
    assert "sudo cp mosquitto.conf /etc/mosquitto/mosquitto.conf" in readme and "not as a `conf.d` snippet" in readme


def test_safe_names_keep_letters_of_every_script():
    assert safe_name("測定 データ 01 (試料A)") == "測定 データ 01 (試料A)"
    assert safe_name("試料") == "試料"
    assert safe_name('a<b>:c"d|e?f*g') == "a_b_c_d_e_f_g" and safe_name("CON") == "_CON"
    assert safe_name("name. ") == "name" and safe_name("") == "data"
    assert safe_name("ｶﾀｶﾅ\u0301") == safe_name("ｶﾀｶﾅ\u0301")  # stable
    used: set[str] = set()
    assert [unique_name(n, used) for n in ("Scan", "scan", "SCAN")] == ["Scan", "scan_2", "SCAN_3"]


def test_translated_outputs_keep_the_measurement_name_and_never_collide(tmp_path, samples_dir):
    src = samples_dir / "rigaku_xrd" / "XRD_RIGAKU.ras"
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    one = shutil.copy(src, a / "測定 データ 01 (試料A).ras")
    two = shutil.copy(src, a / "試料.ras")
    three = shutil.copy(src, b / "試料.ras")  # the same name in another folder
    out = tmp_path / "out"
    r = labedge("translate", str(one), str(two), str(three), "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    csvs = sorted(p.relative_to(out).as_posix() for p in out.rglob("structured/*.csv"))
    assert any(c.endswith("/測定 データ 01 (試料A).csv") for c in csvs), csvs
    assert sum(c.endswith("/試料.csv") for c in csvs) == 2 and len({c.split("/")[0] for c in csvs}) == 3, csvs
