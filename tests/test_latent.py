"""Tests for aeserve.latent: counter-based noise, interpolation, traversal."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from aeserve.errors import ConfigError, InputError
from aeserve.latent import lerp, path, philox4x32, slerp, standard_normal, traverse

# Random123 tests/kat_vectors, "philox4x32 10" lines: counter[4], key[2] -> output[4]
KAT = [
    ([0, 0, 0, 0], (0, 0), [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF] * 4, (0xFFFFFFFF, 0xFFFFFFFF), [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], (0xA4093822, 0x299F31D0),
     [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
]


def test_philox_known_answers():
    ctr = np.array([k[0] for k in KAT], dtype=np.uint64)
    for i, (_, key, want) in enumerate(KAT):
        got = philox4x32(ctr[i:i + 1], key)
        assert got.dtype == np.uint32
        assert got[0].tolist() == want


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def test_standard_normal_statistics():
    z = standard_normal(seed=1, start=0, count=10_000, dim=10).astype(np.float64)  # 1e5 samples
    flat = z.ravel()
    assert z.shape == (10_000, 10)
    assert abs(flat.mean()) < 0.015  # 4.7 sigma of the mean
    assert abs(flat.std() - 1.0) < 0.01
    assert abs(np.mean(flat**3)) < 0.05 and abs(np.mean(flat**4) - 3.0) < 0.1
    # Kolmogorov-Smirnov against N(0, 1): critical value at alpha=1e-3 is 1.95/sqrt(n)
    xs = np.sort(flat)
    cdf = _normal_cdf(xs)
    n = xs.size
    d = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    assert d < 1.95 / math.sqrt(n)
    # columns are uncorrelated, and so are neighbouring rows
    corr = np.corrcoef(z, rowvar=False)
    assert np.max(np.abs(corr - np.eye(10))) < 0.05
    assert abs(np.corrcoef(z[:-1].ravel(), z[1:].ravel())[0, 1]) < 0.02


def test_seeds_and_rows_are_independent():
    a = standard_normal(0, 0, 20_000, 4).ravel().astype(np.float64)
    b = standard_normal(1, 0, 20_000, 4).ravel().astype(np.float64)
    c = standard_normal(2**32, 0, 20_000, 4).ravel().astype(np.float64)  # high key word
    for x, y in ((a, b), (a, c), (b, c)):
        assert abs(np.corrcoef(x, y)[0, 1]) < 0.03
        assert not np.array_equal(x, y)
    hi = standard_normal(0, 2**32, 20_000, 4).ravel().astype(np.float64)  # high counter word
    assert abs(np.corrcoef(a, hi)[0, 1]) < 0.03


def test_row_depends_only_on_seed_and_index():
    full = standard_normal(3, 0, 100, 16)
    assert np.array_equal(standard_normal(3, 0, 8, 16), full[:8])
    assert np.array_equal(standard_normal(3, 37, 5, 16), full[37:42])
    assert np.array_equal(standard_normal(3, 99, 1, 16)[0], full[99])
    # chunked generation and dim prefixes agree too
    parts = np.concatenate([standard_normal(3, s, 10, 16) for s in range(0, 100, 10)])
    assert np.array_equal(parts, full)
    assert np.array_equal(standard_normal(3, 0, 100, 5), full[:, :5])
    assert standard_normal(3, 0, 100, 5).flags.c_contiguous
    # crossing the internal chunk boundary (16384 blocks) changes nothing
    big = standard_normal(4, 0, 5000, 16)
    assert np.array_equal(big[4090:4100], standard_normal(4, 4090, 10, 16))


def test_standard_normal_is_fast():
    standard_normal(0, 0, 1024, 16)
    best = min(_timed(lambda: standard_normal(0, 0, 65536, 16)) for _ in range(3))
    assert best < 0.1, f"65536x16 took {best:.3f}s"


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def test_standard_normal_edge_cases():
    assert standard_normal(0, 0, 0, 3).shape == (0, 3)
    assert standard_normal(2**64 - 1, 2**64 - 1, 1, 3).shape == (1, 3)
    assert np.all(np.isfinite(standard_normal(7, 0, 50_000, 8)))
    for bad in [dict(seed=-1), dict(seed=2**64), dict(seed=1.5), dict(seed=True), dict(dim=0),
                dict(count=-1), dict(start=2**64 - 1, count=2)]:
        kw = dict(seed=0, start=0, count=1, dim=2) | bad
        with pytest.raises(InputError):
            standard_normal(**kw)


def test_lerp_and_slerp_endpoints_exact():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(16).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    t = np.linspace(0, 1, 9)
    for fn in (lerp, slerp):
        out = fn(a, b, t)
        assert out.shape == (9, 16) and out.dtype == np.float32
        assert np.array_equal(out[0], a) and np.array_equal(out[-1], b)
    assert np.allclose(lerp(a, b, 0.5)[0], (a + b) / 2, atol=1e-6)


def test_slerp_follows_the_great_circle():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    mid = slerp(a, b, [0.5])[0]
    w = math.sin(math.pi / 4) / math.sin(math.pi / 2)  # each weight at t=0.5, omega=pi/2
    assert np.allclose(mid, [w, 2 * w], atol=1e-6)
    # for unit vectors the norm stays 1 along the path
    u, v = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.6, 0.8])
    assert np.allclose(np.linalg.norm(slerp(u, v, np.linspace(0, 1, 11)), axis=1), 1.0, atol=1e-6)


def test_slerp_degenerate_cases_fall_back_to_lerp():
    a = np.array([1.0, 2.0, 3.0])
    t = np.linspace(0, 1, 5)
    for b in (2 * a, a, -a, np.zeros(3), a * (1 + 1e-12)):
        out = slerp(a, b, t)
        assert np.all(np.isfinite(out))
        assert np.allclose(out, lerp(a, b, t), atol=1e-5)


def test_path_shape_and_vertices():
    pts = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]])
    for method in ("slerp", "lerp"):
        out = path(pts, steps=5, method=method)
        assert out.shape == ((5 - 1) * 3 + 1, 2)
        assert np.array_equal(out[[0, 4, 8, 12]], pts.astype(np.float32))
    assert path(pts[:2], steps=8).shape == (8, 2)
    assert np.allclose(np.linalg.norm(path(pts, 6), axis=1), 1.0, atol=1e-6)


def test_path_validation():
    pts = np.zeros((2, 3))
    with pytest.raises(InputError, match="steps"):
        path(pts, steps=1)
    with pytest.raises(InputError, match="steps"):
        path(pts, steps=2.5)
    with pytest.raises(ConfigError, match="slerp"):
        path(pts, steps=4, method="cubic")
    with pytest.raises(InputError, match="shape"):
        path(np.zeros((1, 3)), steps=4)
    with pytest.raises(InputError, match="NaN"):
        path(np.array([[0.0, np.nan], [1.0, 1.0]]), steps=4)
    with pytest.raises(InputError, match="expected 3"):
        slerp(np.zeros(3), np.zeros(4), [0.5])
    with pytest.raises(InputError):
        lerp(np.zeros((2, 3)), np.zeros((2, 3)), [0.5])


def test_traverse():
    z = np.arange(5, dtype=np.float32)
    out = traverse(z, dim_index=2, values=[-3.0, 0.0, 3.0])
    assert out.shape == (3, 5) and out.dtype == np.float32
    assert out[:, 2].tolist() == [-3.0, 0.0, 3.0]
    assert np.array_equal(np.delete(out, 2, axis=1), np.tile(np.delete(z, 2), (3, 1)))
    assert np.array_equal(traverse(z, -1, [9.0])[0, 4], 9.0)
    for bad in (5, -6, 1.0):
        with pytest.raises(InputError, match="dim_index"):
            traverse(z, bad, [0.0])
    with pytest.raises(InputError, match="empty"):
        traverse(z, 0, [])
    with pytest.raises(InputError):
        traverse(np.zeros((2, 2)), 0, [1.0])
