"""Spectroscopy, XAFS and NeXus translators: time to translate each real sample, against
reading + sha256 of the same bytes in the same process (the agent hashes every file anyway).

Also a synthetic VAMAS file with 20 blocks x 50,000 points (1 M ordinates, ~9 MB) to show the
text reader scales linearly (one numpy conversion per block, no per-value Python objects kept).

usage: .venv/bin/python bench/bench_spectroscopy.py [SAMPLES_DIR]
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _timing import median_time, read_and_hash  # noqa: E402
from translators.jeol_aes import JeolAesTranslator  # noqa: E402
from translators.nexus import NexusTranslator  # noqa: E402
from translators.phi_spe import PhiSpeTranslator  # noqa: E402
from translators.scienta_txt import ScientaTxtTranslator  # noqa: E402
from translators.specs import SpecsXmlTranslator, SpecsXyTranslator  # noqa: E402
from translators.vamas import VamasTranslator  # noqa: E402
from translators.xafs import AthenaTranslator, Xafs9809Translator, XdiTranslator  # noqa: E402

CASES = [
    (VamasTranslator(), ["vamas/regular.vms"]), (VamasTranslator(), ["vamas/irregular.vms"]),
    (VamasTranslator(), ["vamas/mjr9_59c.vms"]),
    (PhiSpeTranslator(), ["xps_aes_other/XPS_PHI_QUANTERA_survey.spe"]),
    (ScientaTxtTranslator(), ["xps_aes_other/Ag_0001.txt"]),
    (SpecsXyTranslator(), ["xps_aes_other/MgFe2O4_small.xy"]),
    (SpecsXmlTranslator(), ["xps_aes_other/In-situ_PBTTT_XPS_SPECS.xml"]),
    (JeolAesTranslator(), ["xps_aes_other/data036.A/para", "xps_aes_other/data036.A/id",
                           "xps_aes_other/data036.A/data"]),
    (Xafs9809Translator(), ["xafs/PF9A_2022.dat"]), (XdiTranslator(), ["xafs/cu_metal_rt.xdi"]),
    (AthenaTranslator(), ["xafs/fe_athena.prj"]),
    (NexusTranslator(), ["nexus_hdf5/538039.nxs"]), (NexusTranslator(), ["nexus_hdf5/AgBehenate_228.hdf5"]),
    (NexusTranslator(), ["nexus_hdf5/Focus_2021-03-16_051.hdf5"]),
]


def synthetic_vamas(path: Path, blocks: int = 20, points: int = 50_000) -> None:
    head = ["VAMAS Surface Chemical Analysis Standard Data Transfer Format 1988 May 4", "I", "M", "O", "E",
            "0", "NORM", "REGULAR", str(blocks), "0", "0", "0", "0", "0", str(blocks)]
    out = ["\n".join(head)]
    for b in range(blocks):
        blk = [f"b{b}", "s", "2024", "1", "1", "0", "0", "0", "0", "0", "XPS", "Al", "1486.6", "0", "0", "0",
               "54.5", "0", "FAT", "20", "1", "4.5", "0", "0", "0", "0", "0", "C", "1s", "-1",
               "kinetic energy", "eV", "1000", "0.01", "1", "counts", "d", "pulse counting", "0.1", "1", "0",
               "0", "0", "0", "0", str(points), "0", "1000"]
        out.append("\n".join(blk))
        out.append("\n".join(f"{(i * 7919) % 1000}.5" for i in range(points)))
    path.write_text("\n".join(out) + "\n")


def main() -> None:
    samples = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "samples"
    print(f"{'translator':<12} {'file':<36} {'KiB':>6} {'ms':>8} {'sha256 ms':>9} {'ratio':>7}")
    for t, rels in CASES:
        paths = [samples / r for r in rels]
        size = sum(p.stat().st_size for p in paths) / 1024
        tt = median_time(lambda: t.translate(paths))
        ref = read_and_hash(paths)
        print(f"{t.name:<12} {Path(rels[0]).name:<36} {size:6.0f} {tt * 1e3:8.2f} {ref * 1e3:9.3f} {tt / ref:7.0f}x")
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "big.vms"
        synthetic_vamas(p)
        mb = p.stat().st_size / 2**20
        tt = median_time(lambda: VamasTranslator().translate([p]), 3)
        ref = read_and_hash([p])
        print(f"synthetic VAMAS 20 x 50,000 points ({mb:.1f} MiB): {tt:.2f} s, {mb / tt:.1f} MiB/s, "
              f"{tt / ref:.0f}x read+sha256 ({ref * 1e3:.1f} ms)")


if __name__ == "__main__":
    main()
