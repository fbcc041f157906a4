"""aeserve.restoration: corruptions, masks and the checks on user masks."""

from __future__ import annotations

import numpy as np
import pytest

from aeserve import restoration as r
from aeserve.errors import ConfigError, InputError


def test_downsample_is_block_mean_and_upsample_repeats():
    x = np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4)
    low = r.downsample(x, 2)
    assert low.shape == (2, 1, 2, 2)
    assert low[0, 0, 0, 0] == pytest.approx(np.mean([0, 1, 4, 5]))
    up = r.upsample(low, 2)
    assert up.shape == x.shape and np.all(up[0, 0, :2, :2] == low[0, 0, 0, 0])
    assert np.allclose(r.downsample(up, 2), low)  # nearest upsampling keeps the block means


def test_factors_up_to():
    assert r.factors_up_to(4) == (2, 4)
    assert r.factors_up_to(2) == (2,)
    for bad in (3, 1, 0.5, 6):
        with pytest.raises(ConfigError, match="power of two"):
            r.factors_up_to(bad)


def test_to_gray_uses_luma_weights_and_gray_input_repeats():
    x = np.zeros((1, 3, 2, 2), np.float32)
    x[0, 1] = 1.0  # pure green
    g = r.to_gray(x)
    assert g.shape == (1, 1, 2, 2) and np.allclose(g, 0.587)
    assert r.gray_input(g, 3).shape == (1, 3, 2, 2)


def test_center_box_covers_a_quarter():
    m = r.center_box_mask(28, 28)
    assert m.sum() == 14 * 14 and m[7:21, 7:21].all()


def test_patch_and_training_masks_shapes_and_coverage():
    rng = np.random.default_rng(0)
    p = r.patch_masks(rng, 5, 28, 28, count=3)
    assert p.shape == (5, 1, 28, 28) and all(64 <= p[i].sum() <= 192 for i in range(5))
    t = r.training_masks(rng, 200, 28, 28)
    frac = t.reshape(200, -1).mean(1)
    assert frac.min() > 0 and frac.max() < 0.5


def test_corrupt_inpaint_sets_fill_and_downsample_loses_detail():
    rng = np.random.default_rng(1)
    x = rng.random((8, 1, 28, 28), dtype=np.float32)
    c = r.corrupt(x, "inpaint", 0, rng)
    changed = c != x
    assert np.all(c[changed] == r.FILL) and changed.any()
    d = r.corrupt(x, "downsample", 4, rng)
    for i in range(8):  # each image is the nearest upsampling of its x2 or x4 block means
        assert any(np.allclose(d[i:i + 1], r.upsample(r.downsample(x[i:i + 1], f), f)) for f in (2, 4))
    with pytest.raises(ConfigError, match="unknown corruption"):
        r.corrupt(x, "blur", 1, rng)


def test_card_entries():
    e = r.card_entries("downsample", 4, (1, 28, 28))
    assert e["restore.task"] == "upscale" and e["restore.factors"] == [2, 4]
    assert e["restore.low_shapes"] == [[1, 14, 14], [1, 7, 7]]
    assert r.card_entries("inpaint", 0, (1, 28, 28))["restore.fill"] == r.FILL
    with pytest.raises(ConfigError, match="colour images"):
        r.card_entries("grayscale", 0, (1, 28, 28))
    with pytest.raises(ConfigError, match="does not divide"):
        r.card_entries("downsample", 8, (1, 28, 28))


@pytest.mark.parametrize("mask", [r.center_box_mask(28, 28), r.center_box_mask(28, 28).astype(np.uint8) * 255,
                                  np.stack([r.center_box_mask(28, 28)] * 3),
                                  r.center_box_mask(28, 28)[None, None].astype(np.float32)])
def test_check_mask_accepts_binary_forms(mask):
    m = r.check_mask(mask, (3, 1, 28, 28))
    assert m.shape == (3, 1, 28, 28) and m.dtype == bool and m.sum() == 3 * 196


@pytest.mark.parametrize("mask,match", [
    (np.zeros((27, 28), bool), "shape"),
    (np.zeros((2, 28, 28), bool), "shape"),
    (np.full((28, 28), 0.5), "not binary"),
    (np.zeros((28, 28), bool), "no pixel missing"),
    (np.ones((28, 28), bool), "every pixel missing"),
    (np.array([["a"] * 28] * 28), "boolean or 0/1"),
])
def test_check_mask_refuses(mask, match):
    with pytest.raises(InputError, match=match):
        r.check_mask(mask, (3, 1, 28, 28))
