"""The hypermap's pixels decoded a block at a time with numpy, for :func:`hypermap.decode`.

Why: walking ~120 run headers a pixel in Python cost ~100 us a pixel (~100 s at the 2**20-pixel
bound). Here :func:`walk` first follows only the 22-byte pixel headers, whose sizes say where
each pixel's data lie; then :func:`decode_block` decodes many pixels together: one numpy step
advances every pixel of the block by one run header, and the runs of one width, the 12-bit
lists and the pile-up lists of all pixels are each expanded by one gather.

Damage is only *detected* here: the first pixel found inconsistent is handed back by index,
and :func:`hypermap.decode` decodes it again with the per-pixel reader, which raises the error
naming line, pixel and reason. So the messages, and which damage is reported first, stay the
per-pixel reader's; every check there has its bulk twin here (bytes, widths, channels, bases).
"""
from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass

import numpy as np

HEAD = 22
_PIXEL = struct.Struct("<IHHIHHHHH")
_U32 = struct.Struct("<I")
_HEAD_DTYPE = np.dtype([("x", "<u4"), ("chan", "<u2"), ("stored", "<u2"), ("u", "<u4"), ("flag", "<u2"),
                        ("u2", "<u2"), ("pulses", "<u2"), ("size", "<u2"), ("u3", "<u2")])
BLOCK_PIXELS = 8192          # pixels decoded together at most
BLOCK_BYTES = 1 << 21        # pixel bytes a block holds at most (<= 1 Mi run headers)
CHUNK = 1 << 16              # run values expanded at once: 512 KB arrays stay in the CPU cache
                             # (2**20 at once was 1.4x slower on the real file)
_SCALAR = 8                  # with this few pixels left, a Python walk is cheaper than numpy calls


@dataclass
class Walk:
    offsets: np.ndarray            # int64: header position of every consistent pixel, in stream order
    lines: np.ndarray              # int64: the scan line of each
    stop: tuple[str, int, int] | None = None  # ("line" | "pixel", line, position) of the first damage


@dataclass
class Target:
    """Where a block's counts go (the decoder's accumulators, flat) and how the cube is cut."""
    width: int
    channels: int                  # the map's channel count: the spectrum's length
    keep: int                      # cube channels kept (<= channels), summed by ``bin``
    nbins: int
    bin: int
    spectrum: np.ndarray           # (channels,) uint64
    count_map: np.ndarray          # (height * width,) uint64
    cube: np.ndarray | None        # (height * width * nbins,) uint32, or None: no cube
    fresh: np.ndarray | None = None  # (height * width,) bool: no record has written this pixel yet
    dropped: int = 0               # counts at channels >= keep (no cube: >= channels)


def walk(data: bytes, height: int, width: int, header: int) -> Walk:
    """Follow the line records and pixel headers; stop at the first one that does not fit."""
    n_all = len(data)
    offs, lines = array("q"), array("q")
    pos, stop = header, None
    unpack = _PIXEL.unpack_from
    for y in range(height):
        if pos + 4 > n_all or _U32.unpack_from(data, pos)[0] > width:
            stop = ("line", y, pos)
            break
        (n,) = _U32.unpack_from(data, pos)
        pos += 4
        for _ in range(n):
            if pos + HEAD > n_all:
                stop = ("pixel", y, pos)
                break
            x, chan, stored, _u, flag, _u2, pulses, size, _u3 = unpack(data, pos)
            end = pos + HEAD + size  # past the data (for run-coded pixels: with the pile-up size)
            if x >= width or stored > chan or end > n_all:
                stop = ("pixel", y, pos)
                break
            if flag == 1:
                if pulses > size // 2 * 2 // 3 * 2:
                    stop = ("pixel", y, pos)
                    break
            elif size < 4:
                stop = ("pixel", y, pos)
                break
            elif pulses:
                extra = _U32.unpack_from(data, end - 4)[0]
                end += extra
                if extra != 2 * pulses or end > n_all:
                    stop = ("pixel", y, pos)
                    break
            offs.append(pos)
            lines.append(y)
            pos = end
        if stop:
            break
    return Walk(np.array(offs, np.int64), np.array(lines, np.int64), stop)


def blocks(offsets: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) pixel ranges that keep a block's bytes and pixels bounded."""
    most = BLOCK_PIXELS
    out, i = [], 0
    while i < len(offsets):
        j = int(np.searchsorted(offsets, offsets[i] + BLOCK_BYTES, "right"))
        j = min(len(offsets), i + most, max(i + 1, j))
        out.append((i, j))
        i = j
    return out


def _within(counts: np.ndarray) -> np.ndarray:
    """0..count-1 for every entry of ``counts``, concatenated."""
    first = np.cumsum(counts) - counts
    return np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(first, counts)


def _tables() -> np.ndarray:
    """For every run header (width << 8 | count): the bytes to the next header."""
    w, c = np.arange(1 << 16) >> 8, np.arange(1 << 16) & 0xFF
    # width 0: the 2 header bytes only; else also a base of `width` bytes, deltas of width x 4 bits
    step = 2 + np.where(w == 0, 0, w + np.where(w == 1, (c + 1) >> 1, (c * w) >> 1))
    # a width the format does not have jumps past any pixel's end: the pixel is then damaged
    return np.where(np.isin(w, (0, 1, 2, 4, 8)), step, 1 << 40).astype(np.int64)


_STEP = _tables()


def _codes(raw: bytes, lo: int, hi: int) -> np.ndarray:
    """``width << 8 | count`` as if a run header began at each byte of raw[lo:hi]."""
    region = memoryview(raw)[lo:hi]
    out = np.zeros(max(0, len(region) - 1), np.uint16)
    if len(region) < 2:
        return out
    out[0::2] = np.frombuffer(region, ">u2", count=len(region) // 2)
    out[1::2] = np.frombuffer(region, ">u2", count=(len(region) - 1) // 2, offset=1)
    return out


def _run_walk(raw: bytes, codes: np.ndarray, base: int, start: np.ndarray, end: np.ndarray, stored: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every run header of every pixel: (pixel, position, channels filled before it, the
    header ``width << 8 | count``), and
    per pixel whether its runs are damaged: a header or a run past the data, or more
    channels filled than stored (checked at the end: the channels filled only grow)."""
    overrun = end - start == 1
    filled = np.zeros(len(start), np.int64)
    final = end.copy()
    rec_i, rec_p, rec_f, rec_h = [], [], [], []
    ids = np.flatnonzero(end - start > 1)
    p, e = start[ids] - base, end[ids] - base
    f = np.zeros(len(ids), np.int64)
    while len(ids) > _SCALAR:  # one step advances every pixel of the block by one header
        h = codes[p]
        rec_i.append(ids)
        rec_p.append(p)
        rec_f.append(f)
        rec_h.append(h)
        f = f + (h & 0xFF)
        p = p + _STEP[h]
        left = e - p
        live = left > 1
        if not live.all():
            done = ~live
            overrun[ids[left == 1]] = True
            filled[ids[done]], final[ids[done]] = f[done], p[done] + base
            ids, p, e, f = ids[live], p[live], e[live], f[live]
    tail_i, tail_p, tail_f, tail_h = [], [], [], []
    for i, q, stop, got in zip(ids.tolist(), (p + base).tolist(), (e + base).tolist(), f.tolist()):
        while q < stop:
            if q + 2 > stop:
                overrun[i] = True
                break
            w, c = raw[q], raw[q + 1]
            tail_i.append(i)
            tail_p.append(q - base)
            tail_f.append(got)
            tail_h.append(w << 8 | c)
            got += c
            q += int(_STEP[w << 8 | c])
        filled[i], final[i] = got, q
    rec_i.append(np.array(tail_i, np.int64))
    rec_p.append(np.array(tail_p, np.int64))
    rec_f.append(np.array(tail_f, np.int64))
    rec_h.append(np.array(tail_h, np.uint16))
    bad = overrun | (final > end) | (filled > stored)
    return (np.concatenate(rec_i), np.concatenate(rec_p) + base, np.concatenate(rec_f), np.concatenate(rec_h),
            bad)


def _pulse_channels(b: np.ndarray, twelve: np.ndarray, pile: np.ndarray, n12: np.ndarray, npile: np.ndarray
                    ) -> np.ndarray:
    """Channel indices of the 12-bit lists (starting at ``twelve``; byte pairs swapped, two
    values per 3 bytes) and the u16 pile-up lists (starting at ``pile``)."""
    j = _within(n12)
    odd = j & 1
    rel = (j >> 1) * 3 + odd            # first byte of the value, before the pair swap
    at = np.repeat(twelve, n12)
    hi = b[at + (rel ^ 1)].astype(np.int64)
    lo = b[at + ((rel + 1) ^ 1)].astype(np.int64)
    v12 = np.where(odd == 1, ((hi & 0x0F) << 8) | lo, (hi << 4) | (lo >> 4))
    at = np.repeat(pile, npile) + 2 * _within(npile)
    v16 = b[at].astype(np.int64) | (b[at + 1].astype(np.int64) << 8)
    return np.concatenate([v12, v16])


_DELTA_MAX = {1: 0xF, 2: 0xFF, 4: 0xFFFF, 8: 0xFFFFFFFF}


def _deposit(t: Target, at: np.ndarray | None, chan: np.ndarray, val: np.ndarray, top: int, assign: bool = False
             ) -> None:
    """Add counts ``val`` at channels ``chan`` to the spectrum, and at cube indices ``at``
    (cell x nbins + bin) to the cube (``top``: one past the highest channel, so the common
    case needs no mask; where ``chan`` >= keep, ``at`` is not used).

    np.add.at, not fancy ``+=``: a cell may recur (pulses, a pixel stated twice). Adding each
    value mod 2**32 into the uint32 cube equals adding the pixel's checked bin sums mod 2**32.
    ``assign``: every cube cell is written once and is still zero (the runs of pixels seen
    for the first time, unbinned), so a plain store does (it is ~2x faster)."""
    if top <= t.channels:
        np.add.at(t.spectrum, chan, val)
    else:
        m = chan < t.channels
        np.add.at(t.spectrum, chan[m], val[m])
    limit = t.channels if t.cube is None else t.keep
    if top > limit:
        m = chan < limit
        t.dropped += int(val[~m].sum(dtype=np.uint64))
        val = val[m]
        at = None if at is None else at[m]
    if t.cube is not None and at is not None:
        if assign:
            t.cube[at] = val.astype(np.uint32)
        else:
            np.add.at(t.cube, at, val.astype(np.uint32))


def _first_overflow(parts: list[tuple[np.ndarray, np.ndarray]], nbins: int) -> int | None:
    """Block row of the first pixel with a cube bin above 2**32 - 1 counts, from the
    (row x nbins + bin, value) parts of the block (only called when some bin could overflow)."""
    keys = np.concatenate([k for k, _ in parts])
    order = np.argsort(keys, kind="stable")
    keys, vals = keys[order], np.concatenate([v for _, v in parts])[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else keys
    over = np.flatnonzero(np.add.reduceat(vals, starts) > 0xFFFFFFFF) if len(keys) else keys
    return int(keys[starts[over[0]]]) // nbins if len(over) else None


def _expand(t: Target, b: np.ndarray, width: int, p: np.ndarray, cs: np.ndarray, fs: np.ndarray,
            rs: np.ndarray, base: np.ndarray, cell: np.ndarray, totals: np.ndarray, assign: bool,
            parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None) -> None:
    """Expand runs of one ``width`` (header at ``p``, ``cs`` channels from ``fs``, block row
    ``rs``) into their values and deposit them into ``t`` and the rows' ``totals``."""
    first = np.cumsum(cs) - cs      # value k of run r is value first[r] + k of these runs
    e = np.arange(int(cs.sum()), dtype=np.int64)
    if not len(e):
        return
    if width == 1:  # nibbles, low one first: nibble 2q + k of the byte stream, q after the base
        a2 = np.repeat(2 * (p + 3) - first, cs) + e
        val = ((b[a2 >> 1] >> ((a2 & 1) << 2).astype(np.uint8)) & 0x0F).astype(np.uint64)
    else:
        step = width // 2
        at = np.repeat(p + 2 + width - first * step, cs) + e * step
        val = b[at].astype(np.uint64)
        for j in range(1, step):
            val |= b[at + j].astype(np.uint64) << np.uint64(8 * j)
    val += np.repeat(base, cs)
    runs = np.flatnonzero(cs)
    # exact in float64: a run sums to < 2**41 and a pixel to < 65536 * 2**34 < 2**53
    sums = np.add.reduceat(val, first[runs])
    totals += np.bincount(rs[runs], weights=sums, minlength=len(totals)).astype(np.uint64)
    chan = np.repeat(fs - first, cs) + e
    at = None
    if t.cube is not None:
        cb = cell[rs] * t.nbins
        at = np.repeat(cb + fs - first, cs) + e if t.bin == 1 else np.repeat(cb, cs) + chan // t.bin
    _deposit(t, at, chan, val, int((fs + cs).max()), assign)
    if parts is not None:
        m = chan < t.keep
        parts.append(((np.repeat(rs, cs) * t.nbins + chan // t.bin)[m], val[m]))


def decode_block(raw: bytes, b: np.ndarray, offsets: np.ndarray, lines: np.ndarray, t: Target
                 ) -> tuple[np.ndarray, int | None]:
    """Decode the pixels whose headers are at ``offsets`` (consistent as far as :func:`walk`
    looks) into ``t``; return their flags and the block row of the first pixel that is
    inconsistent (rows before it are decoded; the caller raises), or None."""
    head = b[offsets[:, None] + np.arange(HEAD)].view(_HEAD_DTYPE)[:, 0]
    n = len(offsets)
    flag = head["flag"].astype(np.int64)
    pulses = head["pulses"].astype(np.int64)
    data = offsets + HEAD
    size = head["size"].astype(np.int64)
    inst = np.flatnonzero(flag != 1)
    start = data[inst]
    end = start + size[inst] - 4
    lo = int(start.min()) if len(start) else 0
    codes = _codes(raw, lo, int(end.max(initial=lo)))
    i, p, f, h, bad = _run_walk(raw, codes, lo, start, end, head["stored"][inst].astype(np.int64))
    counted = np.flatnonzero(h >> 8)  # runs of width 0 hold no counts: only the others are expanded
    # pixel by pixel, not header step by header step: the cube is then written in order (on a
    # 128 MB cube, scattered writes cost more than this sort)
    counted = counted[np.argsort(i[counted].astype(np.uint16), kind="stable")]
    i, p, f, h = i[counted], p[counted], f[counted], h[counted]
    c = (h & 0xFF).astype(np.int64)
    w = (h >> 8).astype(np.int64)
    eight = np.flatnonzero(w == 8)  # a base above 2**32 could wrap the sums
    eight = eight[~bad[i[eight]]]   # (a damaged pixel's later headers may be anything)
    bad[i[eight[b[p[eight, None] + np.arange(6, 10)].any(axis=1)]]] = True
    cut = n
    row = inst[i]
    if bad.any():
        cut = int(inst[np.flatnonzero(bad)[0]])
        keep = row < cut
        row, p, w, c, f = row[keep], p[keep], w[keep], c[keep], f[keep]
    cell = lines[:cut] * t.width + head["x"][:cut].astype(np.int64)
    totals = pulses[:cut].astype(np.uint64)  # every pulse counts once, whatever its channel
    classes = []
    bound = 0
    present = np.bincount(w, minlength=9)
    for width in (1, 2, 4, 8):
        if present[width]:
            s = np.flatnonzero(w == width)
            base = np.zeros(len(s), np.uint64)
            for k in range(min(width, 4)):
                base |= b[p[s] + 2 + k].astype(np.uint64) << np.uint64(8 * k)
            classes.append((width, s, base))
            bound = max(bound, int(base.max()) + _DELTA_MAX[width])
    # a cube bin holds at most ``bin`` run values and the pixel's pulses: can it pass 2**32 - 1?
    exact = t.cube is not None and bound * t.bin + int(pulses[:cut].max(initial=0)) > 0xFFFFFFFF
    parts = []
    assign = False
    if t.cube is not None and t.fresh is not None:
        assign = t.bin == 1 and bool(t.fresh[cell].all()) and len(np.unique(cell)) == len(cell)
        t.fresh[cell] = False
    for width, s, base in classes:
        ends = np.cumsum(c[s])
        lo_run = 0
        while lo_run < len(s):  # chunks of at most CHUNK values: bounded memory
            hi_run = int(np.searchsorted(ends, (ends[lo_run - 1] if lo_run else 0) + CHUNK, "right"))
            hi_run = max(hi_run, lo_run + 1)
            sl = s[lo_run:hi_run]
            _expand(t, b, width, p[sl], c[sl], f[sl], row[sl], base[lo_run:hi_run], cell, totals, assign,
                    parts if exact else None)
            lo_run = hi_run
    good = np.arange(cut)
    twelve = good[flag[:cut] == 1]
    pile = good[(flag[:cut] != 1) & (pulses[:cut] > 0)]
    chan = _pulse_channels(b, data[twelve], data[pile] + size[pile], pulses[twelve], pulses[pile])
    prow = np.concatenate([np.repeat(twelve, pulses[twelve]), np.repeat(pile, pulses[pile])])
    if len(chan):
        ones = np.ones(len(chan), np.uint64)
        at = None if t.cube is None else cell[prow] * t.nbins + (chan if t.bin == 1 else chan // t.bin)
        _deposit(t, at, chan, ones, int(chan.max()) + 1)
        if exact:
            m = chan < t.keep
            parts.append(((prow * t.nbins + chan // t.bin)[m], ones[m]))
    np.add.at(t.count_map, cell, totals)
    over = _first_overflow(parts, t.nbins) if exact else None
    return flag[:cut], over if over is not None else (None if cut == n else cut)
