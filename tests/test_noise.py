"""Tests for aeserve.noise: Philox known answers, N(0, I) statistics, counter-based rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aeserve.errors import InputError
from aeserve.noise import check_seed, philox4x32, posterior_samples, standard_normal

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


def test_standard_normal_edge_cases():
    assert standard_normal(0, 0, 0, 3).shape == (0, 3)
    assert standard_normal(2**64 - 1, 2**64 - 1, 1, 3).shape == (1, 3)
    assert np.all(np.isfinite(standard_normal(7, 0, 50_000, 8)))
    for bad in [dict(seed=-1), dict(seed=2**64), dict(seed=1.5), dict(seed=True), dict(dim=0),
                dict(count=-1), dict(start=2**64 - 1, count=2)]:
        kw = dict(seed=0, start=0, count=1, dim=2) | bad
        with pytest.raises(InputError):
            standard_normal(**kw)
    assert check_seed(2**64 - 1) == 2**64 - 1
    for bad in (-1, 2**64, 1.5, True, "3"):
        with pytest.raises(InputError, match="seed"):
            check_seed(bad)


def _packed_words(seed: int, start: int, count: int, blocks: int) -> np.ndarray:
    """The small-draw path's Philox lanes as ``(4, count*blocks)`` words (rows c0, c1, c2, c3)."""
    from aeserve.noise import _philox_lanes

    lanes = _philox_lanes(seed, start, count, blocks)
    return np.array([[(c >> (64 * i)) & 0xFFFFFFFFFFFFFFFF for i in range(count * blocks)] for c in lanes], np.uint64)


def test_packed_philox_matches_known_answer():
    """The small-draw path's Philox: seed 0, row 0, block 0 is the all-zero counter and key;
    with more lanes, each lane is the block function of its own counter."""
    assert _packed_words(0, 0, 1, 1)[:, 0].tolist() == KAT[0][2]
    w = _packed_words(2**64 - 1, 2**32 - 1, 2, 3)          # rows 2**32-1 and 2**32: the high word changes
    counters = np.array([[b, r & 0xFFFFFFFF, r >> 32, 0] for r in (2**32 - 1, 2**32) for b in range(3)], np.uint32)
    assert np.array_equal(w.T, philox4x32(counters, (0xFFFFFFFF, 0xFFFFFFFF)))


SEEDS = [0, 1, 7, 2**32 - 1, 2**32, 2**63 + 5, 2**64 - 1]
STARTS = [0, 1, 5, 2**31, 2**32 - 3, 2**40 + 7, 2**64 - 600]
COUNTS = [1, 2, 3, 4, 7, 16, 33, 500]
DIMS = [1, 2, 3, 4, 5, 12, 16, 17, 48]


def test_small_draw_fast_path_is_bit_identical_to_the_array_path(monkeypatch):
    """Every (seed, start, count, dim) of a grid, small and large: the stream with the
    packed-integer fast path equals, bit for bit, the stream computed with arrays only."""
    import aeserve.noise as noise_mod

    fast = {(s, r, c, d): standard_normal(s, r, c, d)
            for s in SEEDS for r in STARTS for c in COUNTS for d in DIMS}
    monkeypatch.setattr(noise_mod, "_PACKED_BLOCKS", 0)
    for (s, r, c, d), got in fast.items():
        want = standard_normal(s, r, c, d)
        assert got.dtype == want.dtype == np.float32 and got.shape == want.shape == (c, d)
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), (s, r, c, d)
    big = standard_normal(3, 2**33, 40_000, 16)
    monkeypatch.undo()
    assert np.array_equal(standard_normal(3, 2**33, 40_000, 16).view(np.uint32), big.view(np.uint32))
    # the rows of a large draw, drawn one at a time (fast path), are the same rows
    for i in (0, 1, 17_000, 39_999):
        assert np.array_equal(standard_normal(3, 2**33 + i, 1, 16)[0].view(np.uint32), big[i].view(np.uint32))


def test_posterior_samples_are_counter_based_per_item_and_draw():
    rng = np.random.default_rng(0)
    mu, logvar = rng.standard_normal((5, 6)).astype(np.float32), rng.standard_normal((5, 6)).astype(np.float32)
    z = posterior_samples(mu, logvar, seed=3, k=4)
    assert z.shape == (4, 5, 6) and z.dtype == np.float32
    eps = standard_normal(3, 0, 20, 6)                                   # row i*k + j
    np.testing.assert_allclose(z[2, 1], mu[1] + np.exp(0.5 * logvar[1]) * eps[1 * 4 + 2], rtol=1e-6)
    # item 3 of the whole == item 0 of a slice starting at 3; a sub-range of draws == those draws
    np.testing.assert_array_equal(posterior_samples(mu[3:], logvar[3:], 3, 4, start=3), z[:, 3:])
    np.testing.assert_array_equal(posterior_samples(mu, logvar, 3, 4, samples=range(1, 3)), z[1:3])
    # k = 1 is the single posterior draw: row start + i
    np.testing.assert_allclose(posterior_samples(mu, logvar, 3, 1, start=7)[0],
                               mu + np.exp(0.5 * logvar) * standard_normal(3, 7, 5, 6), rtol=1e-6)
    for bad in (dict(k=0), dict(samples=range(0, 5)), dict(samples=range(2, 2))):
        with pytest.raises(InputError):
            posterior_samples(mu, logvar, 3, **({"k": 4} | bad))



def _reference_rows(seed: int, start: int, count: int, dim: int) -> np.ndarray:
    """The stream as the module docstring defines it, written plainly: Philox4x32-10 words of
    counter (block, row_lo, row_hi, 0) and key (seed_lo, seed_hi), then float32 Box-Muller on
    the word pairs (w0, w1) and (w2, w3)."""
    blocks = (dim + 3) // 4
    ctr = np.array([[b, r & 0xFFFFFFFF, r >> 32, 0] for r in range(start, start + count) for b in range(blocks)],
                   dtype=np.uint64)
    w = philox4x32(ctr, (seed & 0xFFFFFFFF, seed >> 32)).astype(np.uint64)
    out = np.empty((len(w), 4), np.float32)
    for i in (0, 1):
        u1 = np.ascontiguousarray(w[:, 2 * i] + np.uint64(1)).astype(np.float32) * np.float32(2.0**-32)
        theta = np.ascontiguousarray(w[:, 2 * i + 1]).astype(np.float32) * np.float32(2.0 * np.pi * 2.0**-32)
        r = np.sqrt(np.float32(-2.0) * np.log(u1))
        out[:, 2 * i], out[:, 2 * i + 1] = r * np.cos(theta), r * np.sin(theta)
    return out.reshape(count, blocks * 4)[:, :dim]


@pytest.mark.parametrize("seed,start,count,dim", [(0, 0, 1, 3), (7, 5, 1, 17), (2**64 - 1, 2**32 - 3, 3, 16),
                                                  (3, 2**40, 16, 17), (1, 0, 700, 16)])
def test_stream_equals_the_plain_reference(seed, start, count, dim):
    got = standard_normal(seed, start, count, dim)
    assert np.array_equal(got.view(np.uint32), _reference_rows(seed, start, count, dim).view(np.uint32))
