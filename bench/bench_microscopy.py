"""Microscopy translators: time to translate each real sample, against reading + sha256 of the
same bytes in the same process (the agent hashes every file anyway, so that is the floor).

Also a synthetic 64 x 64 x 2048 float32 DM4-like spectrum image (32 MiB) through the DM reader,
to show the tag reader's cost does not grow with the data (arrays are memory-mapped).

usage: .venv/bin/python bench/bench_microscopy.py [SAMPLES_DIR]
"""
from __future__ import annotations

import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _timing import median_time, read_and_hash  # noqa: E402
from translators.fei_tiff import FeiTiffTranslator  # noqa: E402
from translators.gatan_dm import GatanDMTranslator  # noqa: E402
from translators.jeol_sem import JeolSemTranslator  # noqa: E402
from translators.zeiss_tiff import ZeissTiffTranslator  # noqa: E402


def synthetic_si(path: Path, shape=(2048, 64, 64)) -> None:
    """Minimal DM3 holding one float32 spectrum image (x fastest), calibrated in eV."""
    def group(name, tags):
        n = name.encode()
        return b"\x14" + struct.pack(">H", len(n)) + n + b"\x00\x00" + struct.pack(">I", len(tags)) + b"".join(tags)

    def data(name, info, value):
        n = name.encode()
        return (b"\x15" + struct.pack(">H", len(n)) + n + b"%%%%" + struct.pack(">I", len(info))
                + b"".join(struct.pack(">I", i) for i in info) + value)

    arr = np.random.default_rng(1).random(shape, dtype=np.float32)
    dims = [data("", [5], struct.pack("<I", s)) for s in reversed(shape)]
    cal = group("Dimension", [group("", [data("Units", [20, 4, 2], "nm".encode("utf-16-le"))]),
                              group("", [data("Units", [20, 4, 2], "nm".encode("utf-16-le"))]),
                              group("", [data("Units", [20, 4, 2], "eV".encode("utf-16-le"))])])
    img = group("", [group("ImageData", [data("Data", [20, 6, arr.size], arr.tobytes()),
                                         data("DataType", [3], struct.pack("<i", 2)),
                                         group("Dimensions", dims), group("Calibrations", [cal])])])
    body = b"\x00\x00" + struct.pack(">I", 1) + group("ImageList", [img])
    path.write_bytes(struct.pack(">III", 3, len(body), 1) + body)


def main() -> None:
    samples = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "samples"
    cases = [
        (GatanDMTranslator(), ["gatan_dm/test-EELS_spectrum.dm3"]),
        (GatanDMTranslator(), ["gatan_dm/EELS_SI.dm4"]),
        (GatanDMTranslator(), ["gatan_dm/multi_signal.dm3"]),
        (FeiTiffTranslator(), ["fei_tiff/fei-sem-rbc.tif"]),
        (ZeissTiffTranslator(), ["sem_jeol_zeiss/test_tiff_Zeiss_SEM_1k.tif"]),
        (JeolSemTranslator(), ["sem_jeol_zeiss/jeol_7800F_sampleA_001.txt"]),
    ]
    print(f"{'translator':12} {'file':40} {'KiB':>7} {'translate ms':>13} {'read+sha256 ms':>15} {'ratio':>7}")
    for t, rels in cases:
        paths = [samples / r for r in rels]
        kib = sum(p.stat().st_size for p in paths) / 1024
        tt = median_time(lambda: t.translate(paths))
        ref = read_and_hash(paths)
        print(f"{t.name:12} {rels[0].split('/')[-1]:40} {kib:7.0f} {tt * 1e3:13.2f} {ref * 1e3:15.3f} {tt / ref:7.0f}x")
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "si.dm3"
        synthetic_si(f)
        t = GatanDMTranslator()
        mib = f.stat().st_size / 2**20
        tt = median_time(lambda: t.translate([f]), 5)
        ref = read_and_hash([f])
        print(f"{'gatan-dm':12} {'synthetic SI 64x64x2048 f32 (+sum)':40} {mib * 1024:7.0f} {tt * 1e3:13.2f} "
              f"{ref * 1e3:15.3f} {tt / ref:7.1f}x  ({mib / tt:.0f} MiB/s)")


if __name__ == "__main__":
    main()
