"""Tests for aeserve.latent: interpolation, paths, traversal."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aeserve.errors import ConfigError, InputError
from aeserve.latent import lerp, path, slerp, traverse


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
