"""The .bcf hypermap decoder against references on the same bytes.

Times (median of 7): decoding the decompressed ``SpectrumData0`` into the cube
(``translators.bruker_bcf.hypermap.decode``), against sha256 and a numpy byte sum of the same
decompressed bytes, and the AACS decompression itself; then the whole translate + write.

usage: .venv/bin/python bench/bench_bcf_hypermap.py [FILE.bcf]
"""
from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _timing import median_time  # noqa: E402
from translators import progress  # noqa: E402
from translators.bruker_bcf import hypermap  # noqa: E402
from translators.bruker_bcf.sfs import Sfs, unpack_aacs  # noqa: E402
from translators.registry import load_registry  # noqa: E402
from translators.writer import write_outputs  # noqa: E402

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "samples-variants" / "bruker_eds" / "bcf_v2_50x50px.bcf"


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


if __name__ == "__main__":
    main()
