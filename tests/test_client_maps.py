"""Client.anomaly_map on hand-built models with known answers, and the heat-map overlay."""

from __future__ import annotations

import numpy as np
import pytest
from eval_fixtures import write_constant_ae, write_prior_vae

from aeserve import Client
from aeserve.errors import ConfigError, InputError
from aeserve.heatmap import colormap, overlay


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("maps")
    write_prior_vae(root, "prior", p=0.25)
    write_constant_ae(root, "const", np.full((1, 28, 28), 0.5, np.float32))
    with Client(repository=root, model="const") as c:
        yield c


def test_mse_map_is_squared_error_and_averages_to_the_score(client):
    x = np.random.default_rng(0).random((300, 1, 28, 28), dtype=np.float32)
    m = client.anomaly_map(x)
    assert m.shape == x.shape and m.dtype == np.float32
    assert np.allclose(m, (x - 0.5) ** 2, atol=1e-6)
    assert np.allclose(m.reshape(300, -1).mean(1), client.anomaly_score(x), rtol=1e-5)


def test_nll_map_of_a_vae_is_the_per_pixel_bernoulli_nll(client):
    x = (np.random.default_rng(1).random((5, 1, 28, 28)) > 0.5).astype(np.float32)
    with client.with_model("prior") as c:
        m = c.anomaly_map(x, method="nll", k=3)
        want = -(x * np.log(0.25) + (1 - x) * np.log(0.75))
        assert np.allclose(m, want, rtol=1e-5)
        assert np.array_equal(m, c.anomaly_map(x, method="nll", k=3))


def test_bad_methods_and_arguments(client):
    x = np.zeros((2, 1, 28, 28), np.float32)
    with pytest.raises(ConfigError, match="needs a VAE"):
        client.anomaly_map(x, method="nll")
    with pytest.raises(ConfigError, match="unknown anomaly map method"):
        client.anomaly_map(x, method="ssim")
    with client.with_model("prior") as c, pytest.raises(InputError, match="k"):
        c.anomaly_map(x, method="nll", k=0)
    with pytest.raises(InputError):
        client.anomaly_map(np.zeros((2, 1, 27, 27), np.float32))


def test_overlay_shows_the_image_where_the_map_is_low_and_heat_where_high():
    x = np.full((1, 1, 4, 4), 0.5, np.float32)
    maps = np.zeros((1, 1, 4, 4), np.float32)
    maps[0, 0, 0, 0] = 1.0
    rgb = overlay(x, maps, vmax=1.0)
    assert rgb.shape == (1, 3, 4, 4)
    assert np.allclose(rgb[0, :, 1, 1], 0.4)                 # grey image, dimmed
    assert np.allclose(rgb[0, :, 0, 0], colormap(np.array(1.0)))  # full heat colour
    with pytest.raises(InputError):
        overlay(x, np.zeros((2, 1, 4, 4)))
