"""A bounded decoder for Esprit's hypermap (``EDSDatabase/SpectrumData0`` of a ``.bcf``).

Layout, as the member holds it after AACS decompression (little-endian throughout):

* a 0x1A0-byte map header; its first two int32 are the map height and width;
* then one record per scan line: a u32 pixel count, then that many pixels (a line may skip
  pixels that saw no pulse; they stay zero);
* a pixel: a 22-byte header (u32 x, u16 channels of the map, u16 channels stored for this
  pixel, u32 unused, u16 packing flag, u16 unused, u16 pulse count, u16 data size, u16
  unused) followed by ``data size`` bytes, and, for "instructed" pixels with a pulse count,
  a further block of pile-up pulses;
* flag 1, the 12-bit list: ``pulse count`` channel indices, two per three bytes, in byte
  pairs swapped (so the packing is by 16-bit words, not bytes);
* any other flag, the "instructed" spectrum: runs of (u8 width, u8 channel count) then a
  base value of ``width`` bytes and ``count`` deltas of ``width`` x 4 bits each (width 0:
  ``count`` empty channels); the last 4 bytes of the data are the size in bytes of the
  additional u16 pulse list (``pulse count`` channel indices, one count each) that follows.

Every count and size is checked against the bytes that are there: a damaged member raises
:class:`HypermapError` (the translator turns it into a warning, keeping everything else).
Pixels are decoded a block at a time with numpy (``pixels.py``, ~10 us a pixel); the
per-pixel reader here (:func:`_pixel`) decodes only the first damaged pixel, to raise the
error naming its line, pixel and reason.
The cube is bounded: :func:`plan` truncates and bins channels to fit ``max_values``, or
refuses it (the count map and the pixel-sum spectrum are still decoded, in bounded memory).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from translators.bruker_bcf import pixels
from translators.contract import CorruptFile

HEADER = 0x1A0
_PIXEL = struct.Struct("<IHHIHHHHH")
_LINE = struct.Struct("<I")
MAX_SIDE = 1 << 14                # pixels per side a map may state
MAX_PIXELS = 1 << 20              # pixels decoded (~10-15 us each: ~15 s at the bound)
MAX_CUBE_VALUES = 1 << 25         # 32 Mi values: 128 MB as uint32 while decoding
MAX_BIN = 8                       # coarsest channel binning tried before refusing the cube
_WIDTHS = {2: "<u1", 4: "<u2", 8: "<u4"}  # run width -> delta dtype (1: nibbles)
_BASES = {1: "<u1", 2: "<u2", 4: "<u4", 8: "<u8"}


class HypermapError(CorruptFile):
    """The hypermap member is truncated or inconsistent."""


@dataclass
class Plan:
    keep: int            # channels kept (counts above are dropped and counted)
    bin: int             # channels summed per cube channel
    cube: bool           # False: too large even binned; count map and spectrum only
    values: int          # height x width x cube channels


@dataclass
class Hypermap:
    height: int
    width: int
    channels: int                       # channels of the map (the header's channel count)
    spectrum: np.ndarray                # sum over all pixels, per channel (full resolution)
    count_map: np.ndarray               # (height, width): pulses per pixel
    cube: np.ndarray | None = None      # (height, width, channels // bin), truncated at the last count
    bin: int = 1
    dropped: int = 0                    # pulses beyond ``keep`` or beyond the map's channels
    pixels: int = 0                     # pixel records decoded
    flags: dict[int, int] = field(default_factory=dict)  # packing flag -> pixels


class _Reader:
    """A cursor over the member that refuses to read past its end."""

    def __init__(self, data: bytes) -> None:
        self.raw, self.b, self.pos, self.line = data, memoryview(data), HEADER, 0

    def take(self, n: int, what: str) -> memoryview:
        end = self.pos + n
        if n < 0 or end > len(self.b):
            raise HypermapError(f"hypermap truncated in {what} of line {self.line} "
                                f"(needs {n} bytes at {self.pos}, {len(self.b)} in the member)")
        out = self.b[self.pos:end]
        self.pos = end
        return out


def probe(data: bytes) -> tuple[int, int]:
    """(height, width) from the map header."""
    if len(data) < HEADER + 4:
        raise HypermapError(f"hypermap is {len(data)} bytes, shorter than its {HEADER}-byte header")
    height, width = struct.unpack_from("<ii", data, 0)
    if not (0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE):
        raise HypermapError(f"hypermap states an implausible size {width} x {height}")
    return height, width


def plan(height: int, width: int, channels: int, last_used: int | None, max_values: int | None = None) -> Plan:
    """Fit the cube under ``max_values``: first all channels, then up to ``last_used`` + 1
    (the stored sum spectrum's highest non-empty channel), then binned by 2, 4 ... MAX_BIN."""
    max_values = MAX_CUBE_VALUES if max_values is None else max_values
    pixels = height * width
    keep = channels
    if pixels * keep > max_values and last_used is not None:
        keep = max(1, min(channels, last_used + 1))
    b = 1
    while b <= MAX_BIN:
        values = pixels * -(-keep // b)
        if values <= max_values:
            return Plan(keep, b, True, values)
        b *= 2
    return Plan(keep, MAX_BIN, False, pixels * -(-keep // MAX_BIN))


def _twelve_bit(raw: memoryview, n: int, where: str) -> np.ndarray:
    """``n`` 12-bit channel indices: swap each byte pair, then every 3 bytes hold two values."""
    b = np.frombuffer(raw, np.uint8)
    b = b[:len(b) // 2 * 2]  # whole 16-bit words only
    if n > len(b) // 3 * 2:
        raise HypermapError(f"{where}: {n} 12-bit pulses do not fit in {len(raw)} bytes")
    b = b.reshape(-1, 2)[:, ::-1].reshape(-1).astype(np.uint16)
    t = b[:len(b) // 3 * 3].reshape(-1, 3)
    out = np.empty(len(t) * 2, np.uint16)
    out[0::2] = (t[:, 0] << 4) | (t[:, 1] >> 4)
    out[1::2] = ((t[:, 1] & 0x0F) << 8) | t[:, 2]
    return out[:n]


def _ranges(starts: list[int], counts: list[int]) -> np.ndarray:
    """The indices start..start+count of every run, concatenated."""
    c = np.asarray(counts, np.int64)
    first = np.cumsum(c) - c
    return np.arange(int(c.sum())) + np.repeat(np.asarray(starts, np.int64) - first, c)


def _instructed(r: _Reader, size: int, stored: int, where: str) -> np.ndarray:
    """The run-coded spectrum of one pixel: ``stored`` channels in ``size`` - 4 bytes.

    Run headers are walked in Python (they are small); the deltas of all runs of one width
    are joined and decoded in one numpy call, so the cost is per pixel, not per run."""
    end = r.pos + size - 4
    if size < 4 or end > len(r.raw):
        raise HypermapError(f"{where}: instructed data of {size} bytes runs past the member")
    b, pos, filled = r.raw, r.pos, 0
    runs: dict[int, tuple[list[bytes], list[int], list[int], list[int]]] = {}
    while pos < end:
        if pos + 2 > end:
            raise HypermapError(f"{where}: a run header overruns the pixel's data")
        width, count = b[pos], b[pos + 1]
        pos += 2
        if width:
            nbytes = -(-count // 2) if width == 1 else count * width // 2
            if width not in _BASES or pos + width + nbytes > end:
                raise HypermapError(f"{where}: run of width {width} x {count} does not fit the pixel's data")
            chunks, bases, starts, counts = runs.setdefault(width, ([], [], [], []))
            base = int.from_bytes(b[pos:pos + width], "little")
            if base > 0xFFFFFFFF:  # keeps every sum below 2**64: no silent wrap-around
                raise HypermapError(f"{where}: a run's base value {base} is implausible")
            bases.append(base)
            chunks.append(b[pos + width:pos + width + nbytes])
            starts.append(filled)
            counts.append(count)
            pos += width + nbytes
        filled += count
        if filled > stored:
            raise HypermapError(f"{where}: runs fill {filled} channels, the pixel stores {stored}")
    r.pos = end
    out = np.zeros(filled, np.uint64)
    for width, (chunks, bases, starts, counts) in runs.items():
        raw = np.frombuffer(b"".join(chunks), np.uint8 if width == 1 else _WIDTHS[width])
        if width == 1:  # nibbles, low one first; an odd run leaves a pad nibble
            nib = np.stack([raw & 0x0F, raw >> 4], axis=1).reshape(-1)
            padded = [c + (c & 1) for c in counts]
            raw = nib[_ranges(list(np.cumsum(padded) - padded), counts)]
        out[_ranges(starts, counts)] = raw.astype(np.uint64) + np.repeat(np.asarray(bases, np.uint64), counts)
    return out


def _pixel_counts(r: _Reader, chan: int, stored: int, flag: int, pulses: int, size: int,
                  where: str) -> np.ndarray:
    """One pixel's counts over its own ``chan`` channels (a pulse at or above ``chan`` is
    kept: the 12-bit list can name channels up to 4095, the pile-up list up to 65535)."""
    if flag == 1:
        idx = _twelve_bit(r.take(size, "12-bit data"), pulses, where)
        return np.bincount(idx, minlength=chan).astype(np.uint64)
    counts = np.zeros(chan, np.uint64)
    spec = _instructed(r, size, stored, where)
    counts[:len(spec)] = spec
    (extra,) = _LINE.unpack(r.take(4, "the pile-up size"))
    if pulses:
        if extra != 2 * pulses:
            raise HypermapError(f"{where}: {pulses} pile-up pulses in {extra} bytes")
        idx = np.frombuffer(r.take(extra, "pile-up pulses"), "<u2")
        extra_counts = np.bincount(idx, minlength=chan).astype(np.uint64)
        extra_counts[:chan] += counts
        return extra_counts
    return counts


def _pixel(r: _Reader, y: int, width: int, channels: int, keep: int, p: Plan) -> None:
    """Decode one pixel the slow, obvious way; raise what is wrong with it.

    :func:`decode` finds damage in bulk (``pixels.py``) and calls this on the first damaged
    pixel, so every message names line, pixel and reason exactly as a per-pixel reader would."""
    r.line = y
    x, chan, stored, _u, flag, _u2, pulses, size, _u3 = _PIXEL.unpack(r.take(_PIXEL.size, "a pixel header"))
    where = f"hypermap line {y} pixel x={x}"
    if x >= width or stored > chan:
        raise HypermapError(f"{where}: header is inconsistent (x {x} of {width}, "
                            f"{stored} of {chan} channels stored)")
    kept = _pixel_counts(r, chan, stored, flag, pulses, size, where)[:channels][:keep]
    if p.bin > 1:
        kept = np.pad(kept, (0, -(-keep // p.bin) * p.bin - len(kept))).reshape(-1, p.bin).sum(axis=1)
    if p.cube and kept.max(initial=0) > 0xFFFFFFFF:  # binned runs of large bases
        raise HypermapError(f"{where}: a channel holds more than 2**32 counts")
    raise HypermapError(f"{where}: the bulk and the per-pixel readers disagree")  # not reached


def _line(data: bytes, y: int, pos: int, width: int) -> None:
    """Raise what is wrong with the pixel count of line ``y`` at ``pos``."""
    r = _Reader(data)
    r.pos, r.line = pos, y
    (n,) = _LINE.unpack(r.take(4, "the pixel count"))
    raise HypermapError(f"line {y} states {n} pixels, the map is {width} wide")


def decode(data: bytes, channels: int, p: Plan, max_pixels: int | None = None) -> Hypermap:
    """Decode every line into ``channels`` channels (the header's channel count; counts at
    higher channels are counted in ``dropped``); raise :class:`HypermapError` at the first
    inconsistency."""
    height, width = probe(data)
    max_pixels = MAX_PIXELS if max_pixels is None else max_pixels
    if height * width > max_pixels:
        raise HypermapError(f"hypermap of {width} x {height} pixels is more than the {max_pixels} "
                            "pixels this reader decodes")
    if not 0 < channels <= 1 << 16:
        raise HypermapError(f"hypermap channel count {channels} is implausible")
    keep = min(p.keep, channels)
    nbins = -(-keep // p.bin)
    if p.cube and height * width * nbins > MAX_CUBE_VALUES:  # a plan made for another map
        raise HypermapError(f"hypermap cube of {width} x {height} x {nbins} is more than {MAX_CUBE_VALUES} values")
    cube = np.zeros((height, width, nbins), np.uint32) if p.cube else None
    hm = Hypermap(height, width, channels, np.zeros(channels, np.uint64),
                  np.zeros((height, width), np.uint64), None, p.bin)
    found = pixels.walk(data, height, width, HEADER)
    b = np.frombuffer(data, np.uint8)
    t = pixels.Target(width, channels, keep, nbins, p.bin, hm.spectrum, hm.count_map.reshape(-1),
                      None if cube is None else cube.reshape(-1), np.ones(height * width, bool))
    flags: list[np.ndarray] = []
    for lo, hi in pixels.blocks(found.offsets):
        flag, at = pixels.decode_block(data, b, found.offsets[lo:hi], found.lines[lo:hi], t)
        if at is not None:  # decode that pixel alone: it raises, naming line, pixel and reason
            r = _Reader(data)
            r.pos = int(found.offsets[lo + at])
            _pixel(r, int(found.lines[lo + at]), width, channels, keep, p)
        flags.append(flag)
    hm.dropped = t.dropped
    if found.stop is not None:
        kind, y, pos = found.stop
        if kind == "line":
            _line(data, y, pos, width)
        r = _Reader(data)
        r.pos = pos
        _pixel(r, y, width, channels, keep, p)
    if flags:
        values, first, counts = np.unique(np.concatenate(flags), return_index=True, return_counts=True)
        hm.flags = {int(values[k]): int(counts[k]) for k in np.argsort(first)}
    hm.pixels = len(found.offsets)
    if cube is not None:
        # no bin past the spectrum's last count holds one; that bin itself is nearly always
        # non-empty (it is empty only if a pixel stated twice wrapped a cell to 0 mod 2**32)
        used = np.flatnonzero(hm.spectrum[:keep])
        last = int(used[-1]) // p.bin + 1 if len(used) else 1
        if not cube[:, :, last - 1].any():
            used = np.flatnonzero(cube.any(axis=(0, 1)))
            last = int(used[-1]) + 1 if len(used) else 1
        top = int(cube.max(initial=0))
        hm.cube = cube[:, :, :last].astype(np.uint16 if top <= 0xFFFF else np.uint32)
    return hm
