"""The .bcf hypermap decoder against references on the same bytes.

Times (median of 7): decoding the decompressed ``SpectrumData0`` into the cube
(``translators.bruker_bcf.hypermap.decode``), against sha256 and a numpy byte sum of the same
decompressed bytes, and the AACS decompression itself; then the whole translate + write.
Then a 512x512 map made of the file's own pixel records (copied, x rewritten) shows the cost
per pixel at scale; its cube must equal the real pixels' counts tiled.

usage: .venv/bin/python bench/bench_bcf_hypermap.py [FILE.bcf]
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _timing import median_time  # noqa: E402
from translators import progress  # noqa: E402
from translators.bruker_bcf import hypermap, pixels  # noqa: E402
from translators.bruker_bcf.sfs import Sfs, unpack_aacs  # noqa: E402
from translators.registry import load_registry  # noqa: E402
from translators.writer import write_outputs  # noqa: E402

REFERENCE_COMMIT = "0aef648"  # main before bcfspeed: the per-pixel decoder (~100 us a pixel)


def _load_reference() -> object | None:
    """The per-pixel decoder this one replaced, read from git history (or the file that
    LABEDGE_BCF_REFERENCE names), to time both on the same bytes in the same process."""
    path = os.environ.get("LABEDGE_BCF_REFERENCE")
    if not path:
        try:
            text = subprocess.run(["git", "show", f"{REFERENCE_COMMIT}:translators/bruker_bcf/hypermap.py"],
                                  cwd=Path(__file__).resolve().parents[1], capture_output=True, check=True,
                                  text=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return None
        path = str(Path(tempfile.mkdtemp()) / "bcf_reference.py")
        Path(path).write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("bcf_reference", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bcf_reference"] = mod
    spec.loader.exec_module(mod)
    return mod


_reference = _load_reference()
DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "samples-variants" / "bruker_eds" / "bcf_v2_50x50px.bcf"


def _records(data: bytes, height: int, width: int) -> list[bytes]:
    """The member's pixel records (header + data), in stream order."""
    found = pixels.walk(data, height, width, hypermap.HEADER)
    ends = list(found.offsets[1:]) + [len(data)]
    out = []
    for k, (a, z) in enumerate(zip(found.offsets.tolist(), ends)):
        # the next record starts after the next line's u32 pixel count when the line changes
        nxt = z if k + 1 == len(found.offsets) or found.lines[k + 1] == found.lines[k] else z - 4
        out.append(data[a:nxt])
    return out


def tiled(data: bytes, side: int) -> bytes:
    """A side x side member whose pixel (y, x) is real pixel (y % h, x % w) of ``data``."""
    h, w = hypermap.probe(data)
    recs = _records(data, h, w)
    assert len(recs) == h * w, "the real map must store every pixel"
    head = bytearray(data[:hypermap.HEADER])
    struct.pack_into("<ii", head, 0, side, side)
    parts = [bytes(head)]
    for y in range(side):
        parts.append(struct.pack("<I", side))
        row = recs[(y % h) * w:(y % h + 1) * w]
        parts.extend(struct.pack("<I", x) + row[x % w][4:] for x in range(side))
    return b"".join(parts)


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    raw = path.read_bytes()
    sfs = Sfs(raw, path.name)
    item = next(i for i in sfs.items if i.name == "SpectrumData0")
    packed = sfs.read(item)
    data = unpack_aacs(packed, path.name)
    h, w = hypermap.probe(data)
    plan = hypermap.plan(h, w, 2048, None)
    hm = hypermap.decode(data, 2048, plan)
    t_dec = median_time(lambda: hypermap.decode(data, 2048, plan))
    t_sha = median_time(lambda: hashlib.sha256(data).digest())
    t_sum = median_time(lambda: int(np.frombuffer(data, np.uint8).sum()))
    t_zip = median_time(lambda: unpack_aacs(packed, path.name))
    reg = load_registry()
    t = reg.get("bruker-bcf")

    def whole() -> None:
        with tempfile.TemporaryDirectory() as d:
            progress.begin()
            res, err = progress.translate(t, [path])
            write_outputs(res, t.vocabulary(), [path], Path(d), translator=t.name, version=t.version, error=err)

    t_all = median_time(whole, 3)
    print(f"file {path.name}: {len(raw)} bytes; SpectrumData0 {len(packed)} packed, {len(data)} decompressed; "
          f"cube {hm.cube.shape} from {hm.pixels} pixels")
    print(f"decode        {t_dec * 1e3:8.1f} ms  ({t_dec / (h * w) * 1e6:.0f} us/pixel, "
          f"{len(data) / t_dec / 1e6:.1f} MB/s)")
    print(f"sha256        {t_sha * 1e3:8.2f} ms  decode/sha256 = {t_dec / t_sha:.0f}x")
    print(f"numpy sum     {t_sum * 1e3:8.2f} ms  decode/sum = {t_dec / t_sum:.0f}x")
    print(f"AACS inflate  {t_zip * 1e3:8.2f} ms")
    print(f"translate+write (median of 3) {t_all * 1e3:.0f} ms")
    t_ref = None
    if _reference is not None:  # the per-pixel decoder this one replaced, same bytes, same process
        t_ref = median_time(lambda: _reference.decode(data, 2048, plan), 3)
        print(f"per-pixel decoder {t_ref * 1e3:8.1f} ms  per-pixel/bulk = {t_ref / t_dec:.1f}x")
    last = int(np.flatnonzero(hm.spectrum)[-1])
    for side in (256, 512):  # 256: cube binned by 4 to fit 2**25 values; 512: past that, no cube
        big = tiled(data, side)
        bplan = hypermap.plan(side, side, 2048, last)
        t_big = median_time(lambda: hypermap.decode(big, 2048, bplan), 3)
        bm = hypermap.decode(big, 2048, bplan)
        want = np.tile(hm.count_map, (side // h + 1, side // w + 1))[:side, :side]
        assert np.array_equal(bm.count_map, want), "tiled map decoded wrongly"
        cube = "none (past the bound)" if bm.cube is None else f"{bm.cube.shape} binned by {bm.bin}"
        print(f"tiled {side}x{side} ({len(big) / 1e6:.0f} MB member, cube {cube}): {t_big:.2f} s, "
              f"{t_big / side ** 2 * 1e6:.1f} us/pixel; at 2**20 pixels ~{t_big * 2 ** 20 / side ** 2:.0f} s")
        if _reference is not None and side == 256:
            t_old = median_time(lambda: _reference.decode(big, 2048, bplan), 1)
            print(f"  per-pixel decoder {t_old:.2f} s, per-pixel/bulk = {t_old / t_big:.1f}x")

if __name__ == "__main__":
    main()
