"""The list-mode X-ray events of a JEOL Analysis Station ``.pts`` (PTTD) spectrum map.

Layout (read from the real file and checked against its stored sum spectrum):

- a fixed header: ``PTTDFILE`` at byte 4, then little-endian u32s; the one at byte 28 is the
  offset of the event stream and the one at byte 32 its length in bytes (the tag tree sits
  between byte 0x130 and the stream);
- the stream is 16-bit little-endian words; the high nibble says what the low 12 bits are:
  ``0x8`` x, ``0x9`` y (both on a 4096 full scale: pixel = value * size / 4096), ``0xB`` the
  detector's raw energy channel of one X-ray at the last x/y; ``0x6`` and ``0x7`` are timing
  marks (no value), skipped. A y that goes down starts a new sweep (frame).
- the raw channel minus the template's digital zero (``PARAMPAGE1/Tpl/<Meas Cond/Tpl>/DigZ``)
  is the channel of the stored sum spectrum, with energy ``CoefB + CoefA * channel`` keV.

Every word is untrusted: coordinates outside the scan, channels outside the range, events
before any x/y and words of unknown kind are dropped and counted, never indexed. The stream
is decoded in bounded chunks with numpy (no Python loop per word), and the cube is bounded:
it is binned in energy (powers of two) to fit :data:`MAX_CUBE_VOXELS`, or refused.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from translators.common import num, text, to_int
from translators.contract import CorruptFile

MAX_CUBE_VOXELS = 128 << 20   # 256 MiB as uint16: 512 x 512 x 512 channels
MAX_BIN = 16                  # 16 x 10 eV is about the detector's resolution; coarser is not a spectrum
MAX_SIDE = 4096               # coordinates are 12-bit: a scan cannot have more pixels a side
CHUNK_WORDS = 1 << 22         # 8 MiB of stream per step keeps the transient arrays ~100 MiB
_X, _Y, _E, _MARKS = 0x8, 0x9, 0xB, (0x6, 0x7)


class EventStreamError(CorruptFile):
    """The event stream, or the header fields it needs, cannot be used."""


@dataclass
class ScanParams:
    width: int
    height: int
    channels: int          # channels of the sum spectrum (NumCH)
    digital_zero: int      # raw channel of energy channel 0
    gain: float            # keV per channel
    offset: float          # keV of channel 0
    sweeps: int | None     # what the header says
    used: list[str] = field(default_factory=list)  # flat paths read


@dataclass
class Decoded:
    cube: np.ndarray | None      # (y, x, channels // binning), summed over sweeps
    count_map: np.ndarray        # (y, x) uint32: events per pixel
    spectrum: np.ndarray         # (channels,) int64: events per (unbinned) channel
    binning: int
    cube_channels: int           # channels covered by the cube (before binning)
    frames: int
    events: int                  # events placed in the count map and spectrum
    dropped: dict[str, int]
    warnings: list[str]


def stream_bounds(data: bytes, where: str) -> tuple[int, int, list[str]]:
    """(start, end) of the event stream in ``data``; a truncated or padded file is a warning."""
    if len(data) < 36 or data[4:12] != b"PTTDFILE":
        raise EventStreamError(f"{where}: no PTTDFILE header, so no event stream")
    start, length = struct.unpack_from("<II", data, 28)
    if not 0x130 <= start <= len(data) or start % 2:
        raise EventStreamError(f"{where}: the event stream offset {start} is outside the file "
                               f"({len(data)} bytes)")
    end, notes = start + length, []
    if end > len(data):
        notes.append(f"{where}: truncated event stream: the header says {length} bytes, the file "
                     f"holds {len(data) - start}; the events that are there are decoded")
        end = len(data)
    elif end < len(data):
        notes.append(f"{where}: {len(data) - end} bytes after the event stream are ignored")
    if (end - start) % 2:
        end -= 1  # half a word at the cut
    return start, end, notes


def _pick(flat: dict[str, Any], *tails: str) -> tuple[str | None, Any]:
    for t in tails:
        for k, v in flat.items():
            if (k == t or k.endswith("/" + t)) and v is not None and not isinstance(v, (list, dict, np.ndarray)):
                return k, v
    return None, None


def scan_params(flat: dict[str, Any], sum_channels: int | None, where: str) -> tuple[ScanParams, list[str]]:
    """What the decoder needs from the tag tree, each value checked; missing essentials raise."""
    notes: list[str] = []
    used: list[str] = []
    k, pixels = _pick(flat, "PTTD Data/AnalyzableMap MeasData/Meas Cond/Pixels", "Meas Cond/Pixels")
    m = re.fullmatch(r"\s*(\d{1,5})\s*[xX]\s*(\d{1,5})\s*", text(pixels) or "")
    if not m:
        raise EventStreamError(f"{where}: no scan size (Meas Cond/Pixels is {pixels!r})")
    width, height = int(m[1]), int(m[2])
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise EventStreamError(f"{where}: scan size {width}x{height} is outside 1..{MAX_SIDE} a side")
    used.append(str(k))
    k, nch = _pick(flat, "PARAMPAGE1 items/NumCH", "NumCH")
    channels = to_int(nch)
    if k is not None:
        used.append(k)
    if channels is None or not 16 <= channels <= 4096:
        if sum_channels is None:
            raise EventStreamError(f"{where}: no channel count (NumCH is {nch!r}) and no sum spectrum")
        notes.append(f"{where}: NumCH is {nch!r}; the sum spectrum's {sum_channels} channels are used")
        channels = sum_channels
    k, tpl = _pick(flat, "PTTD Data/AnalyzableMap MeasData/Meas Cond/Tpl", "Meas Cond/Tpl")
    kz, zero = _pick(flat, f"Tpl/{text(tpl) or '?'}/DigZ") if text(tpl) else (None, None)
    digital_zero = to_int(zero)
    if digital_zero is None or not 0 <= digital_zero < 4096:
        notes.append(f"{where}: no digital zero for template {tpl!r}; raw channels are used, so the "
                     "energy axis may be shifted")
        digital_zero = 0
    else:
        used += [str(k), str(kz)]
    ka, gain = _pick(flat, "Doc/CoefA")
    kb, offset = _pick(flat, "Doc/CoefB")
    g, o = num(gain), num(offset)
    if g is None or not 0 < g < 1 or o is None or not -10 < o < 10:
        notes.append(f"{where}: energy calibration CoefA={gain!r} CoefB={offset!r} unusable; 10 eV/channel assumed")
        g, o = 0.01, 0.0
    else:
        used += [str(ka), str(kb)]
    ks, sweeps = _pick(flat, "Doc/Sweep")
    if ks is not None:
        used.append(ks)
    return ScanParams(width, height, channels, digital_zero, g, o, to_int(sweeps), used), notes


def choose_binning(p: ScanParams, channels: int, max_voxels: int = MAX_CUBE_VOXELS) -> int | None:
    """Smallest power-of-two energy binning that fits the budget, or None if none up to MAX_BIN does."""
    b = 1
    while p.width * p.height * -(-channels // b) > max_voxels:
        b *= 2
        if b > MAX_BIN:
            return None
    return b


def _add(target: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """target[idx] += 1 for every idx (repeats counted); promotes uint16 to uint32 rather than wrap."""
    if idx.size == 0:
        return target
    u, n = np.unique(idx, return_counts=True)
    new = target[u].astype(np.uint64) + n
    if new.max() > np.iinfo(target.dtype).max:
        target = target.astype(np.uint32)
    target[u] = new
    return target


def decode(words: np.ndarray, p: ScanParams, cube_channels: int, where: str,
           max_voxels: int = MAX_CUBE_VOXELS) -> Decoded:
    """Sum the events over sweeps into a (y, x, channel) cube, a count map and a spectrum."""
    notes: list[str] = []
    binning = choose_binning(p, cube_channels, max_voxels)
    nbins = -(-cube_channels // binning) if binning else 0
    cube = np.zeros(p.width * p.height * nbins, np.uint16) if binning else None
    if binning is None:
        notes.append(f"{where}: a {p.height}x{p.width}x{cube_channels} spectrum image is larger than "
                     f"this reader builds ({max_voxels} voxels left for this measurement, even binned "
                     f"{MAX_BIN}x in energy); "
                     "the count map and the events' spectrum are given, the cube is not")
    count_map = np.zeros(p.width * p.height, np.uint32)
    spectrum = np.zeros(p.channels, np.int64)
    dropped = {"before_position": 0, "outside_scan": 0, "outside_channels": 0, "unknown_words": 0}
    last_x = last_y = -1   # carried from one chunk to the next
    frames, events = 0, 0
    for s in range(0, words.size, CHUNK_WORDS):
        w = words[s:s + CHUNK_WORDS]
        kind = w >> 12
        tally = np.bincount(kind, minlength=16)
        dropped["unknown_words"] += int(w.size - tally[[_X, _Y, _E, *_MARKS]].sum())
        ix, iy, ie = np.flatnonzero(kind == _X), np.flatnonzero(kind == _Y), np.flatnonzero(kind == _E)
        xv, yv = (w[ix] & 0xFFF).astype(np.int64), (w[iy] & 0xFFF).astype(np.int64)
        if yv.size:
            prev = np.concatenate(([last_y], yv[:-1]))
            frames += int(np.count_nonzero(yv < prev)) + (1 if last_y < 0 else 0)
        x, y = _last(ix, xv, ie, last_x), _last(iy, yv, ie, last_y)
        last_x, last_y = (int(xv[-1]) if xv.size else last_x), (int(yv[-1]) if yv.size else last_y)
        ch = (w[ie] & 0xFFF).astype(np.int64) - p.digital_zero
        placed = (x >= 0) & (y >= 0)
        dropped["before_position"] += int(placed.size - np.count_nonzero(placed))
        px, py = (x * p.width) >> 12, (y * p.height) >> 12
        inside = placed & (px < p.width) & (py < p.height)
        dropped["outside_scan"] += int(np.count_nonzero(placed & ~inside))
        good = inside & (ch >= 0) & (ch < p.channels)
        dropped["outside_channels"] += int(np.count_nonzero(inside & ~good))
        pix, ch = (py * p.width + px)[good], ch[good]
        events += int(pix.size)
        spectrum += np.bincount(ch, minlength=p.channels)
        count_map = _add(count_map, pix)
        if cube is not None:
            keep = ch < cube_channels
            cube = _add(cube, pix[keep] * nbins + ch[keep] // binning)
    frames = max(frames, 1 if events else 0)
    _check(p, frames, events, dropped, words.size, where, notes)
    shaped = cube.reshape(p.height, p.width, nbins) if cube is not None else None
    return Decoded(shaped, count_map.reshape(p.height, p.width), spectrum, binning or 0,
                   cube_channels, frames, events, dropped, notes)


def _last(at: np.ndarray, values: np.ndarray, where: np.ndarray, carry: int) -> np.ndarray:
    """For each word index in ``where``, the value of the last word at ``at`` (sorted indices)
    before it; ``carry`` (the previous chunk's last value, -1 for none) before the first."""
    k = np.searchsorted(at, where) - 1
    return np.where(k >= 0, values[np.maximum(k, 0)] if values.size else carry, carry)


def _check(p: ScanParams, frames: int, events: int, dropped: dict[str, int], nwords: int, where: str,
           notes: list[str]) -> None:
    # a damaged stream shows as words of no known kind or positions outside the scan;
    # a few are tolerated silently, more are said (and make the result partial)
    if dropped["unknown_words"] > max(16, nwords // 1000):
        notes.append(f"{where}: {dropped['unknown_words']} of {nwords} event words are of no known kind "
                     "(damaged stream?); they are skipped")
    if dropped["outside_scan"] or dropped["before_position"] > 16:
        notes.append(f"{where}: {dropped['outside_scan']} events outside the {p.width}x{p.height} scan and "
                     f"{dropped['before_position']} before any position were dropped")
    if p.sweeps is not None and frames != p.sweeps:
        notes.append(f"{where}: the events hold {frames} sweeps, the header says {p.sweeps}")
    if not events:
        notes.append(f"{where}: the event stream holds no X-ray event inside the scan")


def compare_sum(events: np.ndarray, stored: np.ndarray | None, p: ScanParams, where: str,
                above_kev: float = 1.0) -> tuple[dict[str, Any], list[str]]:
    """How the events' spectrum agrees with the stored sum spectrum above ``above_kev``.

    The software corrects low energies (below ~0.5 keV in the real file) in its stored sum, so
    only the channels above are expected to agree count for count; a difference there means a
    damaged or truncated stream (or a different software generation) and is said."""
    if stored is None or stored.size != events.size:
        return {}, []
    first = max(0, int(np.ceil((above_kev - p.offset) / p.gain)))
    a, b = events[first:], np.asarray(stored[first:], dtype=np.int64)
    diff = int(np.abs(a - b).sum())
    info = {"compared_from_channel": first, "stored_counts": int(b.sum()), "event_counts": int(a.sum()),
            "differing_counts": diff}
    notes = []
    if diff > max(1, b.sum() // 1000):
        notes.append(f"{where}: above {above_kev} keV the events give {int(a.sum())} counts where the stored sum "
                     f"spectrum has {int(b.sum())} ({diff} counts differ): the event stream may be damaged")
    return info, notes


def pts_events(flat: dict[str, Any], data: bytes, path: Any, res: Any, const: dict[str, Any],
               stored: np.ndarray | None) -> dict[str, np.ndarray]:
    """Decode a .pts's events into ``res`` (cube, count map, terms, warnings); returns the
    events' spectrum as an extra column for the sum-spectrum table. Raises CorruptFile
    (EventStreamError) when the stream or the header fields it needs are unusable."""
    from translators.contract import Array, Preview

    name = path.name
    start, end, notes = stream_bounds(data, name)
    p, more = scan_params(flat, None if stored is None else int(stored.size), name)
    notes += more
    channels = p.channels
    acc = num(const.get("acceleration_voltage"))
    if acc is not None and 0 < acc < 1000:  # nothing is emitted above the beam energy: trim the cube there
        channels = min(channels, max(16, int(np.ceil((acc - p.offset) / p.gain))))
    words = np.frombuffer(data, "<u2", (end - start) // 2, start)
    # one budget for the whole measurement: several .pts translated together share it
    spent = sum(int(a.data.size) for a in res.arrays if str(a.name).endswith("spectrum_image"))
    d = decode(words, p, channels, name, max_voxels=max(0, MAX_CUBE_VOXELS - spent))
    agree, more = compare_sum(d.spectrum, stored, p, name)
    res.warnings += notes + d.warnings + more
    res.used_keys += [f"{name}/{k}" for k in p.used]
    const.update(map_width=p.width, map_height=p.height, digital_zero=p.digital_zero, events=d.events,
                 sweeps_decoded=d.frames)
    stats = {"events": d.events, "sweeps": d.frames, "digital_zero": p.digital_zero,
             **{f"dropped_{k}": v for k, v in d.dropped.items()}, **{f"sum_check_{k}": v for k, v in agree.items()}}
    xy = {"y": {"size": p.height, "unit": "pixel"}, "x": {"size": p.width, "unit": "pixel"}}
    taken = {a.name for a in res.arrays}  # several .pts in one measurement: one HDF5, distinct names
    cube_name, map_name = (("spectrum_image", "count_map") if not {"spectrum_image", "count_map"} & taken
                           else (f"{path.stem}_spectrum_image", f"{path.stem}_count_map"))
    if d.cube is not None:
        b = d.binning
        const.update(map_channels=int(d.cube.shape[2]), map_energy_binning=b)
        energy = {"size": int(d.cube.shape[2]), "scale": p.gain * b, "offset": p.offset + p.gain * (b - 1) / 2,
                  "unit": "keV", "note": "bin centres"}
        res.arrays.append(Array(cube_name, d.cube, {
            "title": f"{name}: X-ray counts summed over {d.frames} sweeps", "signal": "EDS spectrum image",
            "intensity_unit": "counts", "dims": "y, x, energy", "energy_binning": b,
            "channels_binned": d.cube_channels, **stats}, {**xy, "energy": energy}))
    res.arrays.append(Array(map_name, d.count_map, {
        "title": f"{name}: X-ray events per pixel (all channels)", "intensity_unit": "counts", **stats}, xy))
    if d.events >= 10 * d.count_map.size:  # sparse maps (a few events a pixel) look like noise: keep the spectrum
        res.preview = Preview(image=d.count_map, title=f"{path.stem}: X-ray counts")
    return {"counts_from_events": d.spectrum}
