"""Registry, contract, sandbox and writer: built-in and plug-in translators alike."""
from __future__ import annotations

import json
import os
import re
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from _helpers import rde_validate, report
from translators.contract import Preview, Table, TranslationResult, TranslatorError
from translators.pipeline import translate_into
from translators.registry import load_registry
from translators.writer import coerce, ValueRejected, write_outputs

BUILTINS = {"rigaku", "bruker", "panalytical", "generic-text"}
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
SCHEMA_TYPES = {"string", "number", "integer", "boolean", "array"}

PLUGIN_CODE = '''
import os, time
from pathlib import Path
from translators.contract import TranslationResult, Table, Preview, CorruptFile

VOCAB = {"fake_value": {"name": {"ja": "値", "en": "Value"}, "schema": {"type": "number"},
                        "unit": "K", "originalName": "VALUE", "order": 1}}

class _Base:
    version = "0.1"
    description = "test plug-in"
    def vocabulary(self):
        return VOCAB
    def sniff(self, paths):
        return 0.99 if any(Path(p).suffix == "." + self.suffix for p in paths) else 0.0

class Good(_Base):
    name, suffix = "fake-good", "fake"
    def translate(self, paths):
        text = Path(paths[0]).read_text()
        if not text.startswith("VALUE="):
            raise CorruptFile(f"{Path(paths[0]).name}: first line must be VALUE=<number>")
        v = float(text.split("=", 1)[1])
        return TranslationResult(constant={"fake_value": v}, original={"VALUE": text.strip()},
                                 tables=[Table("t", {"x": [1, 2, 3], "y": [v, v, v]}, {"x": "s", "y": "K"})],
                                 preview=Preview(x=[1, 2, 3], y=[v, v, v]))

class Sleeper(_Base):
    name, suffix = "fake-sleeper", "sleep"
    def translate(self, paths):
        while True:
            time.sleep(1)

class MemHog(_Base):
    name, suffix = "fake-memhog", "hog"
    def translate(self, paths):
        hoard = []
        while True:
            hoard.append(bytearray(64 << 20))

class Crasher(_Base):
    name, suffix = "fake-crasher", "crash"
    def translate(self, paths):
        os.abort()

class Raiser(_Base):
    name, suffix = "fake-raiser", "raise"
    def translate(self, paths):
        return {}["no such key"]

class WrongName(_Base):
    name, suffix = "not-the-entry-point-name", "never"
    def translate(self, paths):
        raise AssertionError("never called")
'''

ENTRY_POINTS = """
[labedge.translators]
fake-good = fakeplug:Good
fake-sleeper = fakeplug:Sleeper
fake-memhog = fakeplug:MemHog
fake-crasher = fakeplug:Crasher
fake-raiser = fakeplug:Raiser
fake-missing = fakeplug:DoesNotExist
fake-importerror = fakeplug_broken:Anything
fake-wrongname = fakeplug:WrongName
"""


@pytest.fixture()
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny installed-looking distribution (dist-info + entry_points.txt) on sys.path and PYTHONPATH."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "fakeplug.py").write_text(PLUGIN_CODE, encoding="utf-8")
    (site / "fakeplug_broken.py").write_text("raise SystemExit('plug-in exits at import')\n", encoding="utf-8")
    dist = site / "fakeplug-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplug\nVersion: 1.0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS, encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))  # the sandboxed child must find the plug-in too
    yield site
    for mod in ("fakeplug", "fakeplug_broken"):
        sys.modules.pop(mod, None)


def test_registry_lists_builtins_with_versions() -> None:
    reg = load_registry()
    by_name = {e.name: e for e in reg.entries}
    assert BUILTINS <= set(by_name), f"built-ins missing from the entry points: {BUILTINS - set(by_name)}"
    for name in BUILTINS:
        assert by_name[name].ok, by_name[name].error
        assert re.match(r"^\d+\.\d+", by_name[name].version)
        assert by_name[name].distribution == "labedge"


def test_broken_plugins_are_reported_and_do_not_stop_others(plugin_path: Path) -> None:
    reg = load_registry()
    by_name = {e.name: e for e in reg.entries}
    assert by_name["fake-good"].ok and by_name["fake-good"].distribution == "fakeplug"
    assert "DoesNotExist" in by_name["fake-missing"].error
    assert "SystemExit" in by_name["fake-importerror"].error
    assert "must equal Translator.name" in by_name["fake-wrongname"].error
    assert not by_name["fake-missing"].ok
    assert BUILTINS <= {e.name for e in reg.entries if e.ok}


def _contract_check(translator, tmp_path: Path) -> Path:
    """The contract every translator keeps; returns its vocabulary as a metadata-def.json to validate."""
    assert isinstance(translator.name, str) and translator.name
    assert isinstance(translator.version, str) and translator.version
    vocab = translator.vocabulary()
    assert vocab, f"{translator.name}: empty vocabulary"
    for key, term in vocab.items():
        assert SNAKE.match(key), f"{translator.name}: vocabulary key {key!r} is not snake_case"
        assert term["name"]["ja"] and term["name"]["en"], f"{translator.name}.{key}: needs name.ja and name.en"
        assert term["schema"]["type"] in SCHEMA_TYPES, f"{translator.name}.{key}: schema.type"
    vdir = tmp_path / translator.name
    vdir.mkdir()
    (vdir / "metadata-def.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    # sniff never raises and stays within 0..1, whatever it is given
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 8)
    empty = tmp_path / "empty.dat"
    empty.write_bytes(b"")
    for paths in ([], [tmp_path / "does-not-exist.ras"], [tmp_path], [junk], [empty]):
        score = translator.sniff(paths)
        assert 0.0 <= float(score) <= 1.0
    # translate on an empty file ends in a TranslatorError (a clear message), not another exception
    with pytest.raises(TranslatorError) as info:
        translator.translate([empty])
    assert "empty" in str(info.value) or "empty.dat" in str(info.value)
    return vdir / "metadata-def.json"


def test_contract_of_every_registered_translator(tmp_path: Path, plugin_path: Path) -> None:
    reg = load_registry()
    checked, defs = [], []
    for entry in reg.entries:
        if entry.ok and entry.name not in ("fake-sleeper", "fake-memhog", "fake-crasher", "fake-raiser"):
            defs.append(_contract_check(entry.translator, tmp_path))
            checked.append(entry.name)
    assert BUILTINS <= set(checked) and "fake-good" in checked
    # one rdetoolkit process per vocabulary, several at a time (each spends most of its second importing)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(rde_validate, defs))


def test_plugin_translates_through_the_sandbox(tmp_path: Path, plugin_path: Path) -> None:
    raw = tmp_path / "m.fake"
    raw.write_text("VALUE=4.2\n")
    data = tmp_path / "pkg" / "data"
    out = translate_into([raw], data)
    assert out.ok and out.translator == "fake-good", out.error
    meta = json.loads((data / "meta" / "metadata.json").read_text())
    assert meta["constant"]["fake_value"] == {"value": 4.2, "unit": "K"}
    assert (data / "structured" / "t.csv").read_text().splitlines()[0] == "x (s),y (K)"
    rep = report(data)
    assert rep["provenance"]["translator"] == "fake-good" and rep["provenance"]["translator_version"] == "0.1"
    assert rep["provenance"]["sources"][0]["sha256"] == __import__("hashlib").sha256(raw.read_bytes()).hexdigest()
    assert rep["sniff_scores"]["fake-good"] == pytest.approx(0.99)


def _run_bad(tmp_path: Path, suffix: str, **limits) -> tuple:
    raw = tmp_path / f"m.{suffix}"
    raw.write_bytes(b"measurement bytes that must survive")
    data = tmp_path / "pkg" / "data"
    t0 = time.monotonic()
    out = translate_into([raw], data, **limits)
    elapsed = time.monotonic() - t0
    assert raw.read_bytes() == b"measurement bytes that must survive"
    assert not out.ok and out.status == "failed"
    assert report(data)["status"] == "failed"
    assert sorted(p.name for p in data.rglob("*") if p.is_file()) == ["translation_report.json"]
    assert not list(data.parent.glob(".labedge-translate-*")), "staging directory left behind"
    return out, elapsed


def test_hanging_translator_is_stopped_by_the_time_limit(tmp_path: Path, plugin_path: Path) -> None:
    out, elapsed = _run_bad(tmp_path, "sleep", timeout_s=3)
    assert "did not finish within 3 s" in out.error and "fake-sleeper" in out.error
    assert elapsed < 60


def test_memory_eating_translator_is_stopped_by_the_memory_limit(tmp_path: Path, plugin_path: Path) -> None:
    if sys.platform == "win32":
        pytest.skip("RLIMIT_AS is POSIX; Windows uses a Job object")
    out, _ = _run_bad(tmp_path, "hog", memory_mb=400, timeout_s=120)
    assert "memory" in out.error and "400 MB" in out.error, out.error


def test_crashing_translator_yields_a_report(tmp_path: Path, plugin_path: Path) -> None:
    out, _ = _run_bad(tmp_path, "crash")
    assert "crashed with SIGABRT" in out.error and "m.crash" in out.error


def test_translator_bug_is_reported_with_detail(tmp_path: Path, plugin_path: Path) -> None:
    out, _ = _run_bad(tmp_path, "raise")
    assert "KeyError" in out.error and "fake-raiser" in out.error
    assert "Traceback" not in out.error
    assert "Traceback" in report(tmp_path / "pkg" / "data")["detail"]


def test_unrecognised_file_is_untranslated_not_lost(tmp_path: Path) -> None:
    raw = tmp_path / "notes.xyz"
    raw.write_bytes(b"\x00\x01 nothing anyone reads")
    data = tmp_path / "pkg" / "data"
    out = translate_into([raw], data)
    assert out.status == "untranslated" and "notes.xyz" in out.error and "rigaku" in out.error
    assert raw.exists()


def test_unknown_translator_name_names_the_installed_ones(tmp_path: Path) -> None:
    raw = tmp_path / "a.ras"
    raw.write_text("x")
    out = translate_into([raw], tmp_path / "p" / "data", translator="no-such")
    assert out.status == "failed" and "no-such" in out.error and "rigaku" in out.error


# ---- writer ---------------------------------------------------------------------------------

VOCAB = {"voltage": {"name": {"ja": "電圧", "en": "Voltage"}, "schema": {"type": "number"}, "unit": "kV",
                     "originalName": "KV", "labedge": {"unitFrom": "KV_UNIT"}},
         "points": {"name": {"ja": "点数", "en": "Points"}, "schema": {"type": "integer"}, "originalName": "N",
                    "variable": 1},
         "started": {"name": {"ja": "開始", "en": "Start"}, "schema": {"type": "string", "format": "date-time"},
                     "originalName": "T", "variable": 1}}


def test_coerce_types() -> None:
    assert coerce(" 40 ", {"type": "number"}) == 40.0
    assert coerce("1401.0000", {"type": "integer"}) == 1401
    with pytest.raises(ValueRejected):
        coerce("1.5", {"type": "integer"})
    with pytest.raises(ValueRejected):
        coerce("nan", {"type": "number"})
    with pytest.raises(ValueRejected):
        coerce("11/21/2017", {"type": "string", "format": "date-time"})
    with pytest.raises(ValueRejected):
        coerce("x" * 2000, {"type": "string"})


def test_writer_outputs_validate_and_report_is_honest(tmp_path: Path) -> None:
    raw = tmp_path / "r.txt"
    raw.write_text("raw")
    res = TranslationResult(
        constant={"voltage": "40", "undeclared": 1},
        variable=[{"points": "10", "started": "2020-01-02T03:04:05"}, {"points": "x1"}],
        original={"KV": "40", "KV_UNIT": "kV", "N": "10", "OTHER": {"deep": 1}},
        tables=[Table("scan", {"2theta": np.arange(3.0), "counts": np.array([1, 2, 3])}, {"2theta": "deg"})],
        preview=Preview(x=np.arange(3.0), y=np.array([1.0, 5.0, 2.0])), stem="r")
    from translators.contract import Array
    res.arrays = [Array("image", np.zeros((64, 64), dtype=np.uint16), {"exposure_s": 0.5},
                        {"x": {"scale": 0.1, "unit": "nm"}})]
    out = tmp_path / "data"
    rep = write_outputs(res, VOCAB, [raw], out, translator="t", version="1")
    meta = json.loads((out / "meta" / "metadata.json").read_text())
    assert meta["constant"] == {"voltage": {"value": 40.0, "unit": "kV"}}
    assert meta["variable"][0] == {"points": {"value": 10}, "started": {"value": "2020-01-02T03:04:05"}}
    assert meta["variable"][1] == {}
    assert any("undeclared" in w for w in rep["warnings"]) and any("x1" in w for w in rep["warnings"])
    assert rep["status"] == "partial"
    assert rep["counts"]["vendor_keys"] == 4 and rep["unmapped_vendor_keys"] == ["OTHER/deep"]
    assert (out / "structured" / "scan.csv").read_text().splitlines()[:2] == ["2theta (deg),counts", "0,1"]
    import h5py
    with h5py.File(out / "structured" / "r.h5") as h5:
        assert h5["image"].compression == "gzip" and h5["image"].attrs["exposure_s"] == 0.5
        assert h5.attrs["voltage"] == 40.0 and h5.attrs["voltage@unit"] == "kV"
    from PIL import Image
    assert Image.open(out / "thumbnail" / "r.png").size == (256, 160)
    assert "labedge" not in json.loads((out / "tasksupport" / "metadata-def.json").read_text())["voltage"]
    rde_validate(out)


def test_worker_subcommand_parser_is_hidden_and_runs(tmp_path: Path) -> None:
    import argparse
    from translators import worker
    parser = argparse.ArgumentParser(prog="labedge")
    sub = parser.add_subparsers()
    worker.add_parser(sub)
    args = parser.parse_args(["_translate-worker", "--request", str(tmp_path / "missing.json")])
    assert args.func(args) == worker.EXIT_BAD_REQUEST
    assert "_translate-worker" not in parser.format_help().split("positional arguments")[-1].replace(
        "{_translate-worker}", "")


def _workers_of(parent_pid: int) -> list[int]:
    """Translator workers whose parent is ``parent_pid`` (read from /proc)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == parent_pid and b"translators.worker" in cmd:
                pids.append(int(d.name))
    return pids


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux; Windows uses a Job")
def test_translator_dies_with_a_killed_agent(tmp_path: Path, plugin_path: Path) -> None:
    """kill -9 of the agent must not leave a translator running with no time limit."""
    import signal
    import subprocess
    import time

    data = tmp_path / "pkg" / "data"
    (data / "raw").mkdir(parents=True)
    raw = data / "raw" / "m.sleep"
    raw.write_text("x")
    code = ("import sys; from pathlib import Path; from translators.pipeline import translate_into; "
            f"translate_into([Path({str(raw)!r})], Path({str(data)!r}), timeout_s=600)")
    parent = subprocess.Popen([sys.executable, "-c", code])
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while not (list(data.parent.glob(".labedge-translate-*/chosen.json")) and
                   (workers := _workers_of(parent.pid))) and time.monotonic() < deadline:
            time.sleep(0.05)  # until a worker has taken the request and is translating (forever)
        assert workers, "the translator worker never started"
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(map(_alive, workers)), "translator worker outlived the killed agent"
    finally:
        if parent.poll() is None:
            parent.kill()
        for pid in filter(_alive, workers):
            os.kill(pid, signal.SIGKILL)
