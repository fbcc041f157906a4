"""Counter-based random numbers in pure NumPy: Philox4x32-10 and seeded N(0, I) rows.

    z = standard_normal(seed=0, start=0, count=64, dim=16)   # (64, 16) float32 ~ N(0, I)
    z[10] == standard_normal(0, 10, 1, 16)[0]                # row i depends only on (seed, start+i)
    check_seed(7)                                            # 7; InputError outside [0, 2**64)
    z = posterior_samples(mu, logvar, seed=0, k=16)          # (16, N, d): z = mu + exp(logvar/2) * eps

The noise comes from Philox4x32-10 (Random123; checked against its known-answer vectors)
with key = seed and counter = (block, row_lo, row_hi, 0), followed by Box-Muller. Each
Philox block gives 4 normals, so column ``j`` of a row depends only on ``(seed, row,
j // 4)``: the same seed gives the same row whatever ``count``, chunking or ``dim`` prefix.
Small draws (up to ``_PACKED_BLOCKS`` blocks: a few rows of a small latent) compute the
Philox words of all blocks at once on Python integers, each block a 64-bit lane of one big
integer (a 32x32-bit product fits its lane, so one big multiply does every lane; no
per-call array overhead; the round keys of a seed are kept) and then Box-Muller on all four
words of every block at once; larger ones use uint64 arrays. Both give the same numbers, bit for bit.
The Philox words are exact on every platform; Box-Muller runs in float32 (log/cos/sin),
so values may differ in the last bit between CPUs with different SIMD math, never more.
"""

from __future__ import annotations

import functools

import numpy as np

from .checks import check_int
from .errors import InputError

__all__ = ["philox4x32", "standard_normal", "check_seed", "posterior_samples"]

_U64 = 2**64
_M0_INT, _M1_INT = 0xD2511F53, 0xCD9E8D57
_M0, _M1 = np.uint64(_M0_INT), np.uint64(_M1_INT)
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_MASK32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_CHUNK_BLOCKS = 16384  # Philox blocks per vectorised chunk
_PACKED_BLOCKS = 192   # up to this many blocks Philox runs on lane-packed Python integers (measured crossover)


def _key_schedule(k0: int, k1: int, rounds: int) -> list[tuple[int, int]]:
    """The Philox round keys: ``(k0, k1)`` bumped by the Weyl constants each round."""
    keys = []
    for _ in range(rounds):
        keys.append((k0, k1))
        k0, k1 = (k0 + _W0) & 0xFFFFFFFF, (k1 + _W1) & 0xFFFFFFFF
    return keys


def _philox_inplace(c0, c1, c2, c3, k0: int, k1: int, rounds: int) -> None:
    """Philox4x32 rounds on four uint64 word arrays (values < 2**32), in place."""
    p0, p1 = np.empty_like(c0), np.empty_like(c0)
    for k0, k1 in _key_schedule(k0, k1, rounds):
        np.multiply(c0, _M0, out=p0)  # 32x32 -> 64 bits: exact in uint64
        np.multiply(c2, _M1, out=p1)
        np.right_shift(p1, _S32, out=c0)
        c0 ^= c1
        c0 ^= np.uint64(k0)
        np.right_shift(p0, _S32, out=c2)
        c2 ^= c3
        c2 ^= np.uint64(k1)
        np.bitwise_and(p1, _MASK32, out=c1)
        np.bitwise_and(p0, _MASK32, out=c3)


def philox4x32(counter: np.ndarray, key: tuple[int, int], rounds: int = 10) -> np.ndarray:
    """Philox4x32-R block function, vectorised.

    ``philox4x32(np.zeros((1, 4), np.uint32), (0, 0))`` -> ``[[0x6627e8d5, ...]]``.
    ``counter``: (M, 4) unsigned ints < 2**32; ``key``: two uint32. Returns (M, 4) uint32.
    """
    c = np.asarray(counter, dtype=np.uint64)
    words = [np.ascontiguousarray(c[:, i]) for i in range(4)]
    _philox_inplace(words[0], words[1], words[2], words[3], int(key[0]) & 0xFFFFFFFF, int(key[1]) & 0xFFFFFFFF,
                    rounds)
    return np.stack(words, axis=1).astype(np.uint32)


def _check_uint64(name: str, value: int) -> int:
    value = check_int(value, name)
    if not 0 <= value < _U64:
        raise InputError(f"{name} must be in [0, 2**64), got {value}")
    return value


def standard_normal(seed: int, start: int, count: int, dim: int) -> np.ndarray:
    """Rows ``start .. start+count-1`` of the seeded infinite N(0, I) matrix.

    ``standard_normal(3, 0, 8, 16)`` equals ``standard_normal(3, 0, 100, 16)[:8]`` and
    ``standard_normal(3, 5, 1, 16)[0] == standard_normal(3, 0, 6, 16)[5]``.
    In: seed, start in [0, 2**64), count >= 0, dim >= 1 (start+count <= 2**64).
    Out: (count, dim) float32. Raises InputError on bad arguments.
    """
    seed = _check_uint64("seed", seed)
    start = _check_uint64("start", start)
    count = _check_uint64("count", count)
    dim = _check_uint64("dim", dim)
    if dim < 1:
        raise InputError(f"dim must be >= 1, got {dim}")
    if start + count > _U64:
        raise InputError(f"rows start+count = {start + count} exceed 2**64")
    if count == 0:
        return np.zeros((0, dim), np.float32)
    blocks = (dim + 3) // 4
    rows_per_chunk = max(1, _CHUNK_BLOCKS // blocks)  # cache-sized pieces: ~2x faster
    if count <= rows_per_chunk:
        out = _normal_rows(seed, start, count, blocks)
    else:
        out = np.empty((count, blocks * 4), np.float32)
        for r0 in range(0, count, rows_per_chunk):
            n = min(rows_per_chunk, count - r0)
            out[r0:r0 + n] = _normal_rows(seed, start + r0, n, blocks)
    return np.ascontiguousarray(out[:, :dim]) if blocks * 4 != dim else out


def _normal_rows(seed: int, start: int, count: int, blocks: int) -> np.ndarray:
    """Rows ``start..start+count-1`` as (count, 4*blocks) float32 (Philox words, then Box-Muller)."""
    m = count * blocks
    if m <= _PACKED_BLOCKS:
        c0, c1, c2, c3 = _philox_lanes(seed, start, count, blocks)
        ones = _lanes(m)
        packed = b"".join(c.to_bytes(8 * m, "little") for c in (c0 + ones, c2 + ones, c1, c3))
        words = np.frombuffer(packed, "<u8").reshape(4, m)
    else:
        words = np.empty((4, m), np.uint64)          # rows c0, c2, c1, c3
        rows = np.repeat(np.uint64(start) + np.arange(count, dtype=np.uint64), blocks)
        words[0] = np.tile(np.arange(blocks, dtype=np.uint64), count)
        np.right_shift(rows, _S32, out=words[1])
        np.bitwise_and(rows, _MASK32, out=words[2])
        words[3] = 0
        _philox_inplace(words[0], words[2], words[1], words[3], seed & 0xFFFFFFFF, seed >> 32, 10)
        words[:2] += np.uint64(1)
    return _box_muller(words).reshape(count, blocks * 4)


_MINUS2 = np.array(-2.0, np.float32)
_BM_SCALE = np.array([[2.0**-32], [2.0**-32], [2.0 * np.pi * 2.0**-32], [2.0 * np.pi * 2.0**-32]], np.float32)


def _box_muller(words: np.ndarray) -> np.ndarray:
    """Box-Muller in float32 on the Philox words of ``m`` blocks, given as ``(4, m)`` uint64 rows
    c0 + 1, c2 + 1, c1, c3: ``(m, 4)`` normals, per block ``r cos(theta), r sin(theta)`` of the
    pair (c0, c1), then of (c2, c3), with u1 = (a + 1) / 2**32 in (0, 1] and theta = 2 pi b / 2**32.
    Each transcendental function runs on one contiguous array, so an element's value does not
    depend on the array it came in."""
    m = words.shape[1]
    f = words.astype(np.float32)
    f *= _BM_SCALE                                   # rows: u1 of pair 0, u1 of pair 1, theta 0, theta 1
    r = np.log(f[:2])
    r *= _MINUS2
    np.sqrt(r, out=r)
    trig = np.empty((2, 2, m), np.float32)          # (cos, sin) x pair x block
    np.cos(f[2:], out=trig[0])
    np.sin(f[2:], out=trig[1])
    trig *= r
    return trig.transpose(2, 1, 0).reshape(m, 4)


@functools.lru_cache(maxsize=256)
def _lanes(lanes: int, width: int = 1) -> int:
    """A Python integer with 1 in the lowest bit of every ``64 * width``-bit lane (``lanes`` lanes)."""
    bits = 64 * width
    return ((1 << (bits * lanes)) - 1) // ((1 << bits) - 1)


@functools.lru_cache(maxsize=64)
def _lane_keys(seed: int, lanes: int) -> tuple[tuple[int, int], ...]:
    """The ten Philox round keys of ``seed``, each repeated in ``lanes`` 64-bit lanes."""
    ones = _lanes(lanes)
    return tuple((k0 * ones, k1 * ones) for k0, k1 in _key_schedule(seed & 0xFFFFFFFF, seed >> 32, 10))


def _philox_lanes(seed: int, start: int, count: int, blocks: int) -> tuple[int, int, int, int]:
    """Philox words c0, c1, c2, c3 of rows ``start..start+count-1`` (``blocks`` blocks each), each
    a Python integer with one 64-bit lane per block (lane ``r * blocks + b``; values < 2**32):
    the same arithmetic as ``_philox_inplace`` applied to every lane at once."""
    m = count * blocks
    mask = _lanes(m) * 0xFFFFFFFF
    row_lane = 64 * blocks
    c0 = _block_lanes(blocks) * _lanes(count, blocks)                          # block index per lane
    c1 = c2 = 0
    for r in range(count):                                                     # row's low / high word
        row = start + r
        c1 |= (row & 0xFFFFFFFF) << (row_lane * r)
        c2 |= (row >> 32) << (row_lane * r)
    c1 *= _lanes(blocks)
    c2 *= _lanes(blocks)
    c3 = 0
    for k0, k1 in _lane_keys(seed, m):
        p0, p1 = c0 * _M0_INT, c2 * _M1_INT      # 32x32 -> 64 bits: stays inside its lane
        c0 = ((p1 >> 32) ^ c1 ^ k0) & mask
        c2 = ((p0 >> 32) ^ c3 ^ k1) & mask
        c1, c3 = p1 & mask, p0 & mask
    return c0, c1, c2, c3


@functools.lru_cache(maxsize=64)
def _block_lanes(blocks: int) -> int:
    """Block indices ``0..blocks-1`` in consecutive 64-bit lanes."""
    return sum(b << (64 * b) for b in range(1, blocks))


def check_seed(seed: int) -> int:
    """``seed`` as an int in [0, 2**64), else InputError (what ``standard_normal`` accepts)."""
    return _check_uint64("seed", seed)


def posterior_samples(mu: np.ndarray, logvar: np.ndarray, seed: int, k: int, *, start: int = 0,
                      samples: range | None = None) -> np.ndarray:
    """``k`` draws per item from a VAE posterior N(mu, exp(logvar)): ``(k, N, d)`` float32.

    ``z[j, i] = mu[i] + exp(logvar[i] / 2) * eps`` with ``eps`` row ``(start + i) * k + j``
    of the seeded N(0, I) matrix, so draw ``j`` of item ``start + i`` depends only on
    ``(seed, start + i, j)``: not on N, chunking or which other draws are made.
    ``samples`` (a sub-range of ``range(k)``) returns only those draws, ``(len(samples), N, d)``.
    With k = 1 this is the single draw ``Client.encode(x, posterior="sample")`` makes.
    In: mu, logvar float ``(N, d)``. Raises InputError on a bad seed/k/range.
    """
    k = check_int(k, "k", minimum=1, detail=" (posterior samples per item)")
    mu = np.asarray(mu, dtype=np.float32)
    scale = np.exp(np.float32(0.5) * np.asarray(logvar, dtype=np.float32))
    n, d = mu.shape
    j0, j1 = (0, k) if samples is None else (samples.start, samples.stop)
    if samples is not None and (samples.step != 1 or not 0 <= j0 < j1 <= k):
        raise InputError(f"samples must be a non-empty contiguous sub-range of range({k}), got {samples!r}")
    if (j0, j1) == (0, k):
        eps = standard_normal(seed, start * k, n * k, d).reshape(n, k, d).transpose(1, 0, 2)
    else:
        eps = np.stack([standard_normal(seed, (start + i) * k + j0, j1 - j0, d) for i in range(n)], 1)
    return mu[None] + scale[None] * eps
