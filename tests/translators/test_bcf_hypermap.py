"""The Bruker .bcf hypermap (SpectrumData0) decoded into a bounded cube.

On the real Esprit 2.x file the cube's pixel sum must equal, channel by channel, the sum
spectrum Esprit stored in the header (the two are independent: XML text versus packed pixels).
The real file holds only "instructed" pixels (flag 2, with pile-up pulses); the 12-bit list
(flag 1) and every run width are checked on a member built here from the documented layout.
"""
from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import numpy as np
import pytest

from _helpers import SAMPLES
from translators import progress
from translators.bruker_bcf import hypermap
from translators.bruker_bcf.sfs import Sfs, unpack_aacs
from translators.registry import load_registry
from translators.writer import write_outputs

BCF = (SAMPLES.parent / "samples-variants" / "bruker_eds" / "bcf_v2_50x50px.bcf").resolve()
_REG = load_registry()


@pytest.fixture(scope="module")
def real() -> bytes:
    if not BCF.is_file():
        pytest.skip("../shared/samples-variants/bruker_eds/bcf_v2_50x50px.bcf is absent")
    return BCF.read_bytes()


@pytest.fixture(scope="module")
def member(real: bytes) -> bytes:
    sfs = Sfs(real, BCF.name)
    item = next(i for i in sfs.items if i.name == "SpectrumData0")
    return unpack_aacs(sfs.read(item), BCF.name)


@pytest.fixture(scope="module")
def stored(real: bytes) -> np.ndarray:
    t = _REG.get("bruker-bcf")
    table = next(tb for tb in t.translate([BCF]).tables if tb.name.endswith("_sum"))
    return np.asarray(table.columns["counts"])


def _beam_energy(out: Path) -> float:
    return json.loads((out / "meta" / "metadata.json").read_text(encoding="utf-8"))["constant"]["beam_energy"]["value"]


def _translate(path: Path, out: Path) -> tuple[dict, object]:
    t = _REG.get("bruker-bcf")
    progress.begin()
    result, error = progress.translate(t, [path])
    rep = write_outputs(result, t.vocabulary(), [path], out, translator=t.name, version=t.version, error=error)
    return rep, result


def test_real_cube_sums_to_the_stored_sum_spectrum(tmp_path: Path, real: bytes, stored: np.ndarray) -> None:
    rep, result = _translate(BCF, tmp_path / "out")
    assert rep["status"] == "ok", rep["warnings"]
    import h5py
    with h5py.File(tmp_path / "out" / "structured" / "bcf_v2_50x50px.h5") as h5:
        cube, counts = h5["hypermap"][()], h5["count_map"][()]
        energy = json.loads(h5["hypermap"].attrs["axis:energy"])
    # 2048 channels in the header; the last non-empty one is 2045, so the cube keeps 2046
    assert cube.shape == (50, 50, 2046) and cube.dtype == np.uint16
    assert len(stored) == 2048 and int(np.flatnonzero(stored)[-1]) == 2045
    assert np.array_equal(cube.sum(axis=(0, 1), dtype=np.int64), stored[:2046])  # exact, per channel
    assert int(cube.sum(dtype=np.int64)) == int(stored.sum()) == 949769
    assert np.array_equal(counts, cube.sum(axis=2, dtype=np.int64)) and counts.min() > 0
    assert energy["offset"] == pytest.approx(-0.47316066) and energy["scale"] == pytest.approx(0.009996)
    assert energy["unit"] == "keV"


def test_truncated_file_keeps_header_overview_and_sum(tmp_path: Path, real: bytes) -> None:
    # SpectrumData0 lies in SFS chunks 26-34, after the header's (6-23): cut inside it
    cut = tmp_path / "cut.bcf"
    cut.write_bytes(real[:0x118 + 30 * 65536])
    rep, result = _translate(cut, tmp_path / "out")
    assert rep["status"] == "partial" and rep["error"] is None
    assert any("SpectrumData0" in w and "cube is not written" in w for w in rep["warnings"]), rep["warnings"]
    assert _beam_energy(tmp_path / "out") == 20.0 and result.constant["map_width"] == 50
    assert {a.name for a in result.arrays} == {"overview"} and result.tables


def test_truncated_member_is_a_hypermap_error(member: bytes) -> None:
    plan = hypermap.plan(50, 50, 2048, None)
    for n in (hypermap.HEADER + 2, len(member) // 3, len(member) - 5):
        with pytest.raises(hypermap.HypermapError, match="truncated|shorter|runs past|overrun|fit"):
            hypermap.decode(member[:n], 2048, plan)


def test_bit_flipped_members_and_files_never_raise(tmp_path: Path, real: bytes, member: bytes) -> None:
    rng = random.Random(14)
    plan = hypermap.plan(50, 50, 2048, None)
    for _ in range(12):  # the decompressed member: only HypermapError may come out
        data = bytearray(member)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(data))
            data[pos] ^= 1 << rng.randrange(8)
        try:
            hypermap.decode(bytes(data), 2048, plan)
        except hypermap.HypermapError:
            pass
    for k in range(3):  # the whole file, flipped inside SpectrumData0's chunks
        data = bytearray(real)
        for _ in range(8):
            pos = 0x118 + rng.randrange(26 * 65536 + 32, 35 * 65536)
            data[pos] ^= 1 << rng.randrange(8)
        path = tmp_path / f"flip{k}.bcf"
        path.write_bytes(bytes(data))
        rep, result = _translate(path, tmp_path / f"out{k}")
        assert rep["status"] in ("ok", "partial") and _beam_energy(tmp_path / f"out{k}") == 20.0


def test_cube_beyond_the_limit_is_binned_then_refused(tmp_path: Path, real: bytes, stored: np.ndarray,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hypermap, "MAX_CUBE_VALUES", 50 * 50 * 600)  # 2046 channels: binned by 4 fits
    rep, result = _translate(BCF, tmp_path / "binned")
    cube = next(a for a in result.arrays if a.name == "hypermap")
    assert cube.data.shape == (50, 50, 512) and cube.attrs["channel_binning"] == 4
    assert cube.axes["energy"]["scale"] == pytest.approx(4 * 0.009996)
    want = np.pad(stored, (0, 2048 - len(stored))).reshape(512, 4).sum(axis=1)
    assert np.array_equal(cube.data.sum(axis=(0, 1), dtype=np.int64), want)
    assert rep["status"] == "partial" and any("binned by 4" in w for w in rep["warnings"])
    monkeypatch.setattr(hypermap, "MAX_CUBE_VALUES", 50 * 50 * 100)  # even 256 bins do not fit
    rep, result = _translate(BCF, tmp_path / "refused")
    assert {a.name for a in result.arrays} == {"overview", "count_map"}
    assert any(f"more than the {50 * 50 * 100} values" in w for w in rep["warnings"]), rep["warnings"]
    counts = next(a for a in result.arrays if a.name == "count_map").data
    assert int(counts.sum()) == 949769


# --- a member built from the documented layout: the 12-bit list and every run width ---

def _pack12(idx: list[int]) -> bytes:
    vals = idx + [0] * (len(idx) % 2)
    out = bytearray()
    for a, b in zip(vals[0::2], vals[1::2]):
        out += bytes([a >> 4, ((a & 0xF) << 4) | (b >> 8), b & 0xFF])
    if len(out) % 2:
        out.append(0)
    out[0::2], out[1::2] = out[1::2], out[0::2]  # stored as swapped byte pairs
    return bytes(out)


def _pixel(x: int, chan: int, flag: int, pulses: int, body: bytes, stored: int | None = None) -> bytes:
    return struct.pack("<IHHIHHHHH", x, chan, chan if stored is None else stored, 0, flag, 0, pulses,
                       len(body) if flag == 1 else len(body) - (2 * pulses if pulses else 0), 0) + body


def _member(lines: list[list[bytes]], width: int) -> bytes:
    head = bytearray(hypermap.HEADER)
    struct.pack_into("<ii", head, 0, len(lines), width)
    return bytes(head) + b"".join(struct.pack("<I", len(px)) + b"".join(px) for px in lines)


def test_twelve_bit_and_instructed_runs_of_every_width() -> None:
    pulses = [0, 5, 5, 4095 % 16, 15, 7, 7, 7]  # channel indices, 16 channels
    twelve = _pixel(0, 16, 1, len(pulses), _pack12(pulses))
    # instructed: 3 empty, 5 nibbles on base 2, 2 u8 on base 300, 3 u16 on base 1, 2 u32 on base 0, 1 empty
    runs = (bytes([0, 3]) + bytes([1, 5]) + bytes([2]) + bytes([0x21, 0x43, 0x05])
            + bytes([2, 2]) + struct.pack("<H", 300) + bytes([1, 2])
            + bytes([4, 3]) + struct.pack("<I", 1) + struct.pack("<3H", 0, 10, 1000)
            + bytes([8, 2]) + struct.pack("<Q", 0) + struct.pack("<2I", 70000, 0) + bytes([0, 1]))
    pile = struct.pack("<2H", 3, 20)  # pile-up pulses; channel 20 is past the header's 16
    inst = _pixel(1, 18, 2, 2, runs + struct.pack("<I", len(pile)) + pile)
    data = _member([[twelve], [], [inst]], width=2)
    hm = hypermap.decode(data, 16, hypermap.plan(3, 2, 16, None))
    assert hm.flags == {1: 1, 2: 1} and hm.pixels == 2
    assert hm.cube.shape == (3, 2, 16) and hm.cube.dtype == np.uint32  # 70000 needs 32 bits
    assert hm.cube[0, 0].tolist() == np.bincount(pulses, minlength=16).tolist()
    want = [0, 0, 0, 3 + 1, 4, 5, 6, 7, 301, 302, 1, 11, 1001, 70000, 0, 0]
    assert hm.cube[2, 1].tolist() == want and hm.cube[1].sum() == 0 and hm.cube[0, 1].sum() == 0
    assert hm.dropped == 1 and int(hm.count_map[2, 1]) == sum(want) + 1  # the pulse at channel 20
    assert np.array_equal(hm.spectrum, hm.cube.sum(axis=(0, 1)))


def test_inconsistent_pixels_are_named() -> None:
    good = _pixel(0, 16, 1, 2, _pack12([1, 2]))
    for data, what in ((_member([[good, good, good]], 2), "states 3 pixels"),
                       (_member([[_pixel(5, 16, 1, 2, _pack12([1, 2]))]], 2), "inconsistent"),
                       (_member([[_pixel(0, 16, 2, 0, bytes([3, 1, 0]) + bytes(4))]], 2), "width 3"),
                       (_member([[_pixel(0, 4, 2, 0, bytes([0, 9]) + bytes(4))]], 2), "the pixel stores 4"),
                       # 3 bytes hold two 12-bit values, but only whole 16-bit words count
                       (_member([[_pixel(0, 16, 1, 2, bytes(3))]], 2), "2 12-bit pulses do not fit in 3")):
        with pytest.raises(hypermap.HypermapError, match=what):
            hypermap.decode(data, 16, hypermap.plan(1, 2, 16, None))
