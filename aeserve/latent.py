"""Latent-space operations in pure NumPy: counter-based noise, interpolation, traversal.

    z = standard_normal(seed=0, start=0, count=64, dim=16)   # (64, 16) float32 ~ N(0, I)
    z[10] == standard_normal(0, 10, 1, 16)[0]                # row i depends only on (seed, start+i)
    line = slerp(z[0], z[1], np.linspace(0, 1, 8))           # (8, 16), endpoints exact
    walk = path(z[:3], steps=8, method="slerp")              # (15, 16) through 3 points
    sweep = traverse(z[0], dim_index=2, values=[-2, 0, 2])   # (3, 16), column 2 replaced

The noise comes from Philox4x32-10 (Random123; checked against its known-answer vectors)
with key = seed and counter = (block, row_lo, row_hi, 0), followed by Box-Muller. Each
Philox block gives 4 normals, so column ``j`` of a row depends only on ``(seed, row,
j // 4)``: the same seed gives the same row whatever ``count``, chunking or ``dim`` prefix.
The Philox words are exact on every platform; Box-Muller runs in float32 (log/cos/sin),
so values may differ in the last bit between CPUs with different SIMD math, never more.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import ConfigError, InputError

__all__ = ["philox4x32", "standard_normal", "lerp", "slerp", "path", "traverse", "METHODS"]

METHODS = ("slerp", "lerp")
_U64 = 2**64
_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_MASK32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_CHUNK_BLOCKS = 16384  # Philox blocks per vectorised chunk
_SLERP_EPS = 1e-6  # |sin(omega)| below this: (anti)parallel, fall back to lerp


def _philox_inplace(c0, c1, c2, c3, k0: int, k1: int, rounds: int) -> None:
    """Philox4x32 rounds on four uint64 word arrays (values < 2**32), in place."""
    p0, p1 = np.empty_like(c0), np.empty_like(c0)
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + _W0) & 0xFFFFFFFF, (k1 + _W1) & 0xFFFFFFFF
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
    _philox_inplace(*words, int(key[0]) & 0xFFFFFFFF, int(key[1]) & 0xFFFFFFFF, rounds)
    return np.stack(words, axis=1).astype(np.uint32)


def _check_uint64(name: str, value: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
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
    out = np.empty((count, blocks * 4), np.float32)
    rows_per_chunk = max(1, _CHUNK_BLOCKS // blocks)  # cache-sized pieces: ~2x faster
    for r0 in range(0, count, rows_per_chunk):
        n = min(rows_per_chunk, count - r0)
        out[r0:r0 + n] = _normal_rows(seed, start + r0, n, blocks)
    return np.ascontiguousarray(out[:, :dim]) if blocks * 4 != dim else out


def _normal_rows(seed: int, start: int, count: int, blocks: int) -> np.ndarray:
    rows = np.repeat(np.uint64(start) + np.arange(count, dtype=np.uint64), blocks)
    c0 = np.tile(np.arange(blocks, dtype=np.uint64), count)
    c1 = rows & _MASK32
    c2 = rows >> _S32
    c3 = np.zeros_like(c0)
    _philox_inplace(c0, c1, c2, c3, seed & 0xFFFFFFFF, seed >> 32, 10)
    # Box-Muller on word pairs (c0, c1) and (c2, c3): u1 in (0, 1], angle in [0, 2pi)
    out = np.empty((c0.shape[0], 4), np.float32)
    for i, (a, b) in enumerate(((c0, c1), (c2, c3))):
        u1 = (a + np.uint64(1)).astype(np.float32) * np.float32(2.0**-32)
        theta = b.astype(np.float32) * np.float32(2.0 * np.pi * 2.0**-32)
        r = np.sqrt(np.float32(-2.0) * np.log(u1))
        out[:, 2 * i] = r * np.cos(theta)
        out[:, 2 * i + 1] = r * np.sin(theta)
    return out.reshape(count, blocks * 4)


# ---- interpolation ---------------------------------------------------------------------


def _vector(name: str, v, dim: int | None = None) -> np.ndarray:
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a numeric latent vector, got {type(v).__name__}") from None
    if a.ndim != 1 or a.size == 0:
        raise InputError(f"{name} must be a 1-d latent vector (dim,), got shape {a.shape}")
    if dim is not None and a.shape[0] != dim:
        raise InputError(f"{name} has latent dim {a.shape[0]}, expected {dim}")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name} contains NaN or Inf; expected finite values")
    return a


def _weights(t) -> np.ndarray:
    try:
        tt = np.asarray(t, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"t must be numbers, got {type(t).__name__}") from None
    if tt.ndim > 1:
        raise InputError(f"t must be a scalar or 1-d array, got shape {tt.shape}")
    if not np.all(np.isfinite(tt)):
        raise InputError("t contains NaN or Inf; expected finite values")
    return tt.reshape(-1)


def lerp(a, b, t) -> np.ndarray:
    """Linear interpolation ``(1-t) a + t b``.

    ``lerp(a, b, np.linspace(0, 1, 5))`` -> (5, dim) float32; a, b: (dim,); t: scalar or
    1-d. Rows with t == 0 / t == 1 are exactly a / b. InputError on shape/NaN problems.
    """
    a = _vector("a", a)
    b = _vector("b", b, a.shape[0])
    tt = _weights(t)[:, None]
    out = (1.0 - tt) * a + tt * b
    return _pin_ends(out, a, b, tt[:, 0])


def slerp(a, b, t) -> np.ndarray:
    """Spherical interpolation (Shoemake), for Gaussian latents.

    ``slerp(a, b, [0, .5, 1])`` -> (3, dim) float32, rows 0 and 2 exactly a and b.
    Follows the great circle between the directions of a and b with weights
    ``sin((1-t)w)/sin(w)`` and ``sin(tw)/sin(w)``; if a or b is zero or they are (anti-)
    parallel (|sin w| < 1e-6) it falls back to ``lerp``. InputError on shape/NaN problems.
    """
    a = _vector("a", a)
    b = _vector("b", b, a.shape[0])
    tt = _weights(t)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0.0 or nb == 0.0:
        return lerp(a, b, tt)
    cos = float(np.clip(np.dot(a / na, b / nb), -1.0, 1.0))
    omega = np.arccos(cos)
    sin = np.sin(omega)
    if abs(sin) < _SLERP_EPS:
        return lerp(a, b, tt)
    wa = np.sin((1.0 - tt) * omega) / sin
    wb = np.sin(tt * omega) / sin
    out = wa[:, None] * a + wb[:, None] * b
    return _pin_ends(out, a, b, tt)


def _pin_ends(out: np.ndarray, a: np.ndarray, b: np.ndarray, tt: np.ndarray) -> np.ndarray:
    out[tt == 0.0] = a
    out[tt == 1.0] = b
    return out.astype(np.float32)


_INTERP = {"slerp": slerp, "lerp": lerp}


def check_seed(seed: int) -> int:
    """``seed`` as an int in [0, 2**64), else InputError (what ``standard_normal`` accepts)."""
    return _check_uint64("seed", seed)


def check_steps(steps) -> int:
    """``steps`` as an int >= 2, else InputError."""
    if isinstance(steps, (bool, np.bool_)) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise InputError(f"steps must be an integer >= 2 (points per segment, ends included), got {steps!r}")
    return int(steps)


def check_method(method: str) -> str:
    """``method`` if it is 'slerp' or 'lerp', else ConfigError."""
    if method not in _INTERP:
        raise ConfigError(f"unknown interpolation method {method!r}; expected one of {', '.join(METHODS)}")
    return method


def path(points, steps: int, method: str = "slerp") -> np.ndarray:
    """A piecewise path through ``P >= 2`` latent points.

    ``path(np.stack([z0, z1, z2]), steps=8)`` -> (15, dim) float32.
    Each of the P-1 segments is sampled at ``steps`` evenly spaced t in [0, 1] (both ends
    included); a segment's end is the next one's start and appears once, so the output
    has ``(steps - 1) * (P - 1) + 1`` rows, row 0 is points[0] and the last row
    points[-1], exactly. For P = 2 that is ``steps`` rows.
    Raises InputError (steps < 2, P < 2, bad shape, NaN/Inf), ConfigError (method).
    """
    steps = check_steps(steps)
    interp = _INTERP[check_method(method)]
    try:
        pts = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"points must be a numeric (P, dim) array, got {type(points).__name__}") from None
    if pts.ndim != 2 or pts.shape[0] < 2 or pts.shape[1] < 1:
        raise InputError(f"points must have shape (P >= 2, dim), got {pts.shape}")
    t = np.linspace(0.0, 1.0, steps)
    segments = [interp(pts[i], pts[i + 1], t if i == 0 else t[1:]) for i in range(pts.shape[0] - 1)]
    return np.concatenate(segments, axis=0)


def traverse(z, dim_index: int, values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Vary one latent coordinate, keep the others.

    ``traverse(z, dim_index=3, values=np.linspace(-3, 3, 7))`` -> (7, dim) float32 whose
    column 3 is ``values`` and other columns are ``z``. Negative ``dim_index`` counts
    from the end. InputError on an out-of-range index, empty/non-finite values or bad z.
    """
    z = _vector("z", z)
    dim = z.shape[0]
    if isinstance(dim_index, (bool, np.bool_)) or not isinstance(dim_index, (int, np.integer)):
        raise InputError(f"dim_index must be an integer, got {type(dim_index).__name__}")
    if not -dim <= dim_index < dim:
        raise InputError(f"dim_index {dim_index} is out of range for latent dim {dim}; expected 0..{dim - 1}")
    vals = _weights(values)
    if vals.size == 0:
        raise InputError("values must not be empty; expected at least one value for the coordinate")
    out = np.repeat(z[None, :], vals.size, axis=0)
    out[:, dim_index] = vals
    return out.astype(np.float32)
