"""JEOL .pts list-mode X-ray events (translators/jeol_eds/events.py) on the real file and on
damaged copies of it, plus the stream's rules on small streams built word by word.

What the real file shows, and these tests hold: the events' spectrum (raw channel minus the
template's digital zero DigZ = 96) equals the stored sum spectrum count for count at every
channel from 52 up (0.52 keV); below, the software's stored sum is corrected for low energies
(its C K peak sits 0.7 channel higher than the raw events' and channels under DigL = 9 are
zeroed), so there the two differ by a few per cent and are compared by total only."""
from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import numpy as np
import pytest

from _helpers import SAMPLES
from translators import progress
from translators.jeol_eds import JeolEdsTranslator
from translators.jeol_eds.events import ScanParams, decode, stream_bounds
from translators.jeol_eds.tree import find_tree, parse_tree
from translators.writer import flatten, write_outputs

PTS = (SAMPLES.parent / "samples-variants" / "jeol_eds" / "Sample" / "00_View000" / "View000_0000006.pts").resolve()
T = JeolEdsTranslator()


@pytest.fixture(scope="module")
def real() -> tuple[bytes, dict, object]:
    if not PTS.is_file():
        pytest.skip("the shared .pts sample is absent")
    data = PTS.read_bytes()
    tree, _ = parse_tree(data, find_tree(data), PTS.name)
    return data, flatten(tree), T.translate([PTS])


def _arr(res, name: str):
    return next(a for a in res.arrays if a.name == name)


def test_cube_has_the_scan_shape_and_calibration_of_the_header(real) -> None:
    data, flat, res = real
    doc = "PTTD Data/AnalyzableMap MeasData/"
    assert flat[doc + "Meas Cond/Pixels"] == "512x512" and flat["PTTD Param/Params/PARAMPAGE1 items/NumCH"] == 2048
    cube = _arr(res, "spectrum_image")
    # 512 x 512 x 2048 is 1 GiB as uint16: the cube is binned 4x in energy to stay in its budget
    assert cube.data.shape == (512, 512, 2048 // 4) and cube.data.dtype == np.uint16
    energy = cube.axes["energy"]
    assert energy["unit"] == "keV" and energy["scale"] == pytest.approx(4 * flat[doc + "Doc/CoefA"])
    assert energy["offset"] == pytest.approx(flat[doc + "Doc/CoefB"] + 1.5 * flat[doc + "Doc/CoefA"])
    assert res.constant["digital_zero"] == flat["PTTD Param/Params/PARAMPAGE1 items/Tpl/T4/DigZ"] == 96
    assert res.constant["sweeps_decoded"] == flat[doc + "Doc/Sweep"] == 14
    assert res.constant["detector"] == "EX24075JGT" and res.constant["take_off_angle"] == pytest.approx(22.3)
    assert res.warnings == []
    counts = _arr(res, "count_map").data
    assert counts.shape == (512, 512) and np.array_equal(counts, cube.data.sum(axis=2, dtype=np.uint32))
    assert int(counts.sum()) == res.constant["events"] == 298736


def test_cube_summed_over_pixels_is_the_stored_sum_spectrum(real) -> None:
    data, flat, res = real
    stored = flat["EDS Data/AnalyzableMap MeasData/Data/EDXRF"].astype(np.int64)
    table = next(t for t in res.tables if t.name.endswith("_sum"))
    events = np.asarray(table.columns["counts_from_events"])
    assert np.array_equal(np.asarray(table.columns["counts"]), stored)
    # count for count from channel 52 (0.52 keV) to the last of the 2048
    assert np.array_equal(events[52:], stored[52:]) and int(stored[52:].sum()) == 211483
    # below: the same X-rays, redistributed by the software's low-energy correction
    assert stored[:9].sum() == 0 and abs(int(events[9:52].sum()) - int(stored[:52].sum())) < 0.03 * stored[:52].sum()
    # the cube holds the same events: its spectrum, binned back, is the events' spectrum
    cube_spectrum = _arr(res, "spectrum_image").data.sum(axis=(0, 1), dtype=np.int64)
    assert np.array_equal(cube_spectrum, events.reshape(-1, 4).sum(axis=1))
    assert np.array_equal(cube_spectrum[13:], stored.reshape(-1, 4).sum(axis=1)[13:])


def _write(paths: list[Path], out: Path) -> tuple[dict, dict]:
    result, error = progress.translate(T, paths)
    rep = write_outputs(result, T.vocabulary(), paths, out, translator=T.name, version=T.version, error=error)
    meta = json.loads((out / "meta" / "metadata.json").read_text(encoding="utf-8"))
    return rep, meta["constant"]


def test_truncated_event_stream_is_partial_and_keeps_the_conditions(real, tmp_path: Path) -> None:
    data = real[0]
    start, end, _ = stream_bounds(data, "x")
    cut = tmp_path / "cut.pts"
    cut.write_bytes(data[:start + (end - start) // 2 + 1])  # half the stream, and half a word
    rep, const = _write([cut], tmp_path / "cut")
    assert rep["status"] == "partial" and any("truncated event stream" in w for w in rep["warnings"])
    assert const["live_time"]["value"] == 325.46 and const["acceleration_voltage"]["value"] == 200.0
    assert 0 < const["events"]["value"] < 298736 and const["sweeps_decoded"]["value"] < 14
    assert any("sweeps, the header says 14" in w for w in rep["warnings"])
    assert any("stored sum spectrum" in w for w in rep["warnings"])  # half the counts are missing: said
    # cut before the stream: no events at all, but the header and the stored sum are kept
    head = tmp_path / "head.pts"
    head.write_bytes(data[:start - 100])
    rep, const = _write([head], tmp_path / "head")
    assert rep["status"] == "partial" and any("not decoded" in w for w in rep["warnings"])
    assert const["live_time"]["value"] == 325.46 and "events" not in const
    assert (tmp_path / "head" / "structured" / "head_sum.csv").is_file()


@pytest.mark.parametrize("seed", range(4))
def test_bit_flipped_copies_never_raise(real, tmp_path: Path, seed: int) -> None:
    data = bytearray(real[0])
    start, end, _ = stream_bounds(bytes(data), "x")
    rng = random.Random(seed)
    # flip bits in the event stream, and (odd seeds) in the stream's offset and length words too
    for _ in range(500):
        data[rng.randrange(start, end)] ^= 1 << rng.randrange(8)
    if seed % 2:
        data[28 + rng.randrange(8)] ^= 1 << rng.randrange(8)
    f = tmp_path / f"flip{seed}.pts"
    f.write_bytes(bytes(data))
    res = T.translate([f])  # no exception, damaged stream or not
    assert res.constant["live_time"] == 325.46
    if not seed % 2:
        cube = _arr(res, "spectrum_image").data
        assert cube.shape == (512, 512, 512) and res.warnings  # damage is said, not silently absorbed


def test_two_maps_in_one_measurement_share_one_cube_budget(real, tmp_path: Path) -> None:
    other = tmp_path / "View000_0000007.pts"
    other.write_bytes(real[0])
    res = T.translate([PTS, other])
    names = {a.name: a.data.shape for a in res.arrays}
    assert names == {"spectrum_image": (512, 512, 512), "count_map": (512, 512),
                     "View000_0000007_count_map": (512, 512)}  # distinct names, one cube within the budget
    assert any("View000_0000007.pts" in w and "larger than this reader builds" in w for w in res.warnings)


def _stream(*words: int) -> np.ndarray:
    return np.array(words, dtype="<u2")


P = ScanParams(width=4, height=2, channels=8, digital_zero=2, gain=0.01, offset=0.0, sweeps=2)


def test_stream_rules_on_a_small_stream() -> None:
    x = lambda px: 0x8000 | px * 1024   # 4 pixels over the 4096 full scale  # noqa: E731
    y = lambda py: 0x9000 | py * 2048   # 2 lines  # noqa: E731
    e = lambda ch: 0xB000 | ch          # noqa: E731
    words = _stream(e(5),                            # before any position: dropped
                    y(0), x(1), e(2), e(3), 0x6000, 0x7000, x(3), e(9),
                    y(1), x(0), e(2 + 7), e(1),      # raw 1 is below the digital zero: dropped
                    y(0), x(1), e(3),                # y goes back: second sweep
                    0x1234)                          # a word of no known kind: skipped
    d = decode(words, P, 8, "t")
    assert d.frames == 2 and d.events == 5
    assert d.dropped == {"before_position": 1, "outside_scan": 0, "outside_channels": 1, "unknown_words": 1}
    assert d.cube[0, 1].tolist() == [1, 2, 0, 0, 0, 0, 0, 0] and d.cube[0, 3, 7] == 1 and d.cube[1, 0, 7] == 1
    assert d.count_map.tolist() == [[0, 3, 0, 1], [1, 0, 0, 0]] and d.spectrum.tolist() == [1, 2, 0, 0, 0, 0, 0, 2]


def test_cube_beyond_the_budget_is_refused_and_counts_do_not_wrap() -> None:
    words = _stream(*([0x9000, 0x8000] + [0xB003] * 70_000))
    d = decode(words, P, 8, "t", max_voxels=4)  # 4 x 2 x 8 cannot fit 4 voxels even binned 16x
    assert d.cube is None and any("larger than this reader builds" in w for w in d.warnings)
    assert d.count_map[0, 0] == 70_000
    d = decode(words, P, 8, "t")
    assert d.cube.dtype == np.uint32 and d.cube[0, 0, 1] == 70_000  # promoted, not wrapped at 65536


def test_header_offsets_that_point_outside_the_file_are_refused() -> None:
    head = bytearray(64)
    head[4:12] = b"PTTDFILE"
    struct.pack_into("<II", head, 28, 1 << 30, 16)
    with pytest.raises(Exception, match="outside the file"):
        stream_bounds(bytes(head), "h.pts")
