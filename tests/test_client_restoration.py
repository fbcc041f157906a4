"""Client.inpaint / upscale / colorize (embedded) on hand-built identity restoration models
(tests/apps_helpers.py): the answers are known, so each call's own work is what is checked."""

from __future__ import annotations

import numpy as np
import pytest
from apps_helpers import restoration_repository
from eval_fixtures import write_prior_vae

from aeserve import Client, restoration
from aeserve.errors import ConfigError, InputError


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = restoration_repository(tmp_path_factory.mktemp("restore") / "repo")
    write_prior_vae(root, "prior")
    return root


@pytest.fixture(scope="module")
def client(repo):
    with Client(repository=repo, model="t_inpaint") as c:
        yield c


def images(n, shape=(1, 28, 28), seed=0):
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def test_cards_say_what_each_model_restores(client):
    cards = client.models()
    assert {n: c.restores for n, c in cards.items()} == {"t_inpaint": "inpaint", "t_sr": "upscale",
                                                       "t_color": "colorize", "prior": None}
    assert cards["t_sr"].get_json("restore.low_shapes") == [[1, 14, 14], [1, 7, 7]]


def test_inpaint_keeps_known_pixels_and_fills_the_hole_with_the_model(client):
    x = images(20)  # more than max_batch_size 16: split and reassembled
    m = restoration.center_box_mask(28, 28)
    out = client.inpaint(x, m)
    assert out.shape == x.shape and out.dtype == np.float32
    assert np.array_equal(out[:, :, ~m], x[:, :, ~m])
    assert np.all(out[:, :, m] == 0.5)  # identity model: the hole comes back as the card's fill value
    # what was under the mask does not matter
    x2 = x.copy()
    x2[:, :, m] = 1.0
    assert np.array_equal(client.inpaint(x2, m), out)


def test_inpaint_per_image_masks(client):
    x = images(3)
    masks = restoration.patch_masks(np.random.default_rng(0), 3, 28, 28)
    out = client.inpaint(x, masks[:, 0])
    assert np.array_equal(out[~masks], x[~masks])


@pytest.mark.parametrize("mask,match", [(np.zeros((14, 14), bool), "shape"), (np.full((28, 28), 0.3), "binary"),
                                        (np.zeros((28, 28)), "no pixel"), (np.ones((28, 28)), "every pixel")])
def test_inpaint_bad_masks(client, mask, match):
    with pytest.raises(InputError, match=match):
        client.inpaint(images(2), mask)


def test_upscale_reads_the_factor_from_the_input_size(client):
    with client.with_model("t_sr") as c:
        assert c.upscale_factors == (2, 4)
        x = images(5)
        for f in (2, 4):
            low = restoration.downsample(x, f)
            out = c.upscale(low)
            assert out.shape == x.shape
            assert np.array_equal(out, np.repeat(np.repeat(low, f, axis=2), f, axis=3))  # identity: nearest
        assert np.allclose(c.upscale(restoration.downsample(x, 4)[:, 0]), c.upscale(restoration.downsample(x, 4)))
        with pytest.raises(InputError, match=r"\(N, 1, 7, 7\) for x4"):
            c.upscale(images(2, (1, 9, 9)))
        with pytest.raises(InputError):
            c.upscale(restoration.downsample(x, 4) * 2)  # values outside [0, 1]


def test_colorize_takes_gray_and_refuses_colour(client):
    with client.with_model("t_color") as c:
        rgb = images(4, (3, 16, 16))
        gray = restoration.to_gray(rgb)
        out = c.colorize(gray)
        assert out.shape == (4, 3, 16, 16)
        assert np.allclose(out, np.concatenate([gray] * 3, axis=1))  # identity: grey in every channel
        assert np.allclose(c.colorize(gray[:, 0]), out)
        with pytest.raises(InputError, match="greyscale"):
            c.colorize(rgb)
        with pytest.raises(InputError):
            c.colorize(images(2, (1, 28, 28)))


@pytest.mark.parametrize("call,model,names", [
    ("upscale", "t_inpaint", "t_sr"), ("inpaint", "prior", "t_inpaint"), ("colorize", "t_sr", "t_color")])
def test_a_restoration_on_the_wrong_model_names_the_right_one(client, call, model, names):
    with client.with_model(model) as c:
        args = {"upscale": (images(1, (1, 7, 7)),), "inpaint": (images(1), restoration.center_box_mask(28, 28)),
                "colorize": (images(1, (1, 16, 16)),)}[call]
        with pytest.raises(ConfigError, match=f"models that do: {names}"):
            getattr(c, call)(*args)
