"""aeserve.images: batch validation/conversion, PNG grids, loading."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from aeserve.errors import DataError, InputError
from aeserve.images import as_batch, as_latents, load_images, read_image, read_images, save_grid, to_uint8

SHAPE = (1, 28, 28)


def test_float_batch_passes_through_as_float32():
    x = np.random.default_rng(0).random((3, 1, 28, 28))
    out = as_batch(x, SHAPE)
    assert out.dtype == np.float32 and out.shape == (3, 1, 28, 28)
    np.testing.assert_allclose(out, x, rtol=0, atol=1e-7)


def test_uint8_is_scaled_and_nhw_gets_a_channel():
    x = np.array([[[0, 255], [51, 102]]], np.uint8)
    out = as_batch(x, (1, 2, 2))
    assert out.shape == (1, 1, 2, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0], [[0, 1], [0.2, 0.4]], atol=1e-7)


def test_single_image_only_when_allowed():
    img = np.zeros((28, 28), np.float32)
    assert as_batch(img, SHAPE, allow_single=True).shape == (1, 1, 28, 28)
    assert as_batch(img[None], SHAPE, allow_single=True).shape == (1, 1, 28, 28)
    with pytest.raises(InputError, match=r"shape \(28, 28\); expected \(N, 1, 28, 28\)"):
        as_batch(img, SHAPE)


@pytest.mark.parametrize("x, match", [
    (np.zeros((0, 1, 28, 28), np.float32), "empty"),
    (np.full((2, 1, 28, 28), np.nan, np.float32), "NaN/Inf"),
    (np.full((2, 1, 28, 28), np.inf, np.float64), "NaN/Inf"),
    (np.full((2, 1, 28, 28), 1.5, np.float32), r"values in \[1.5, 1.5\]; expected floats in \[0, 1\]"),
    (np.full((2, 1, 28, 28), -0.1, np.float32), "expected floats in"),
    (np.zeros((2, 1, 28, 28), np.int64), "dtype int64; expected uint8"),
    (np.zeros((2, 1, 28, 28), np.complex64), "dtype complex64"),
    (np.zeros((2, 1, 28, 28), bool), "dtype bool"),
    (np.zeros((2, 3, 28, 28), np.float32), r"3 channel\(s\).*expects 1 channel"),
    (np.zeros((2, 1, 32, 32), np.float32), r"shape \(2, 1, 32, 32\); expected \(N, 1, 28, 28\)"),
    (np.zeros((2, 784), np.float32), "expected"),
    ("not an array", "got str"),
    (None, "got NoneType"),
    ([[1, 2], [3]], "expected"),
])
def test_bad_input_raises_input_error_with_message(x, match):
    with pytest.raises(InputError, match=match):
        as_batch(x, SHAPE)


def test_as_latents():
    assert as_latents(np.zeros((3, 4), np.float64), 4).dtype == np.float32
    assert as_latents(np.zeros(4), 4, allow_single=True).shape == (1, 4)
    for bad, match in [(np.zeros((3, 5)), r"expected \(N, 4\)"), (np.zeros((0, 4)), "empty"),
                       (np.full((1, 4), np.nan), "NaN"), (np.zeros((1, 4), np.complex64), "dtype"),
                       (np.zeros(4), r"expected \(N, 4\)")]:
        with pytest.raises(InputError, match=match):
            as_latents(bad, 4)


def test_save_grid_layout_and_roundtrip(tmp_path):
    x = np.linspace(0, 1, 5 * 28 * 28, dtype=np.float32).reshape(5, 1, 28, 28)
    path = save_grid(x, tmp_path / "sub" / "grid.png", ncol=3, pad=2)
    assert path.exists() and [p.name for p in path.parent.iterdir()] == ["grid.png"]  # no temp left
    with Image.open(path) as img:
        assert img.size == (3 * 28 + 2 * 2, 2 * 28 + 2) and img.mode == "L"
        arr = np.asarray(img)
    np.testing.assert_array_equal(arr[:28, 30:58], to_uint8(x[1, 0]))
    assert arr[30:, 60:].max() == 0  # empty 6th tile stays black

    single = save_grid(x[:1], tmp_path / "one.png")
    back = load_images([single])
    assert back.shape == (1, 1, 28, 28)
    np.testing.assert_allclose(back, to_uint8(x[:1]) / 255.0, atol=1e-7)


def test_save_grid_rgb_and_errors(tmp_path):
    rgb = np.random.default_rng(1).random((4, 3, 8, 8)).astype(np.float32)
    with Image.open(save_grid(rgb, tmp_path / "rgb.png", ncol=2, pad=0)) as img:
        assert img.mode == "RGB" and img.size == (16, 16)
    assert load_images([tmp_path / "rgb.png"]).shape == (1, 3, 16, 16)
    with pytest.raises(InputError, match="C 1 or 3"):
        save_grid(np.zeros((2, 2, 8, 8), np.float32), tmp_path / "x.png")
    with pytest.raises(InputError, match="ncol"):
        save_grid(rgb, tmp_path / "x.png", ncol=0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="cannot write"):
        save_grid(rgb, tmp_path / "file" / "x.png")


def test_load_images_errors(tmp_path):
    with pytest.raises(InputError, match="no image paths"):
        load_images([])
    with pytest.raises(DataError, match="does not exist"):
        load_images([tmp_path / "missing.png"])
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot read image"):
        load_images([tmp_path / "junk.png"])
    save_grid(np.zeros((1, 1, 8, 8), np.float32), tmp_path / "a.png")
    save_grid(np.zeros((1, 1, 9, 9), np.float32), tmp_path / "b.png")
    with pytest.raises(DataError, match=r"b.png: image is \(C, H, W\) \(1, 9, 9\); expected \(1, 8, 8\)"):
        load_images([tmp_path / "a.png", tmp_path / "b.png"])
    assert load_images([tmp_path / "a.png"], channels=3).shape == (1, 3, 8, 8)
    Image.fromarray(np.zeros((4, 4), np.float32), mode="F").save(tmp_path / "f.tif")
    with pytest.raises(DataError, match="mode F"):
        load_images([tmp_path / "f.tif"])


def _save_u16(path, arr):
    Image.fromarray(arr.astype(np.uint16)).save(path)
    with Image.open(path) as img:
        assert img.mode.startswith("I")            # really a 16-bit greyscale PNG on disk


def test_16bit_png_is_scaled_not_saturated(tmp_path):
    values = np.array([[0, 1000], [32768, 65535]])
    _save_u16(tmp_path / "wide.png", values)
    x = read_image(tmp_path / "wide.png")
    assert x.dtype == np.float32 and x.shape == (1, 2, 2)
    np.testing.assert_allclose(x[0], values / 65535.0, rtol=1e-6)
    assert read_image(tmp_path / "wide.png", channels=3).shape == (3, 2, 2)
    np.testing.assert_allclose(load_images([tmp_path / "wide.png"])[0], values[None] / 65535.0, rtol=1e-6)
    # mixed with an 8-bit file: one float batch, each file on its own scale
    Image.fromarray(np.full((2, 2), 255, np.uint8)).save(tmp_path / "byte.png")
    both = read_images([tmp_path / "byte.png", tmp_path / "wide.png"])
    assert both.dtype == np.float32 and both[0].min() == 1.0 and both[1].max() == 1.0
    assert read_images([tmp_path / "byte.png"]).dtype == np.uint8
