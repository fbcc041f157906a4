"""Tests for aeserve.anomaly with hand-computed answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aeserve.anomaly import log_likelihood, mse_score, neg_elbo, threshold_from_scores
from aeserve.errors import ConfigError, InputError


def test_mse_score_per_sample():
    x = np.zeros((3, 1, 2, 2), np.float32)
    x_hat = np.stack([np.zeros((1, 2, 2)), np.full((1, 2, 2), 0.5), np.array([[[1.0, 0], [0, 0]]])])
    s = mse_score(x, x_hat)
    assert s.dtype == np.float64 and s.shape == (3,)
    assert np.allclose(s, [0.0, 0.25, 0.25])


def test_mse_score_validation():
    with pytest.raises(InputError, match="shape"):
        mse_score(np.zeros((2, 4)), np.zeros((2, 5)))
    with pytest.raises(InputError, match="NaN"):
        mse_score(np.array([[np.nan]]), np.zeros((1, 1)))
    with pytest.raises(InputError):
        mse_score(np.zeros((0, 4)), np.zeros((0, 4)))


def test_neg_elbo_prior_posterior_bernoulli_constant_decoder():
    # posterior == prior -> KL = 0; decoder always outputs 0.5 -> log p = D * log(0.5)
    n, d, k = 4, 6, 3
    x = np.random.default_rng(0).integers(0, 2, (n, 1, 2, 3)).astype(np.float32)
    x_hats = np.full((k, n, 1, 2, 3), 0.5)
    zeros = np.zeros((n, d))
    got = neg_elbo(x, x_hats, zeros, zeros, "bernoulli")
    assert got.shape == (n,)
    assert np.allclose(got, 6 * math.log(2.0))


def test_neg_elbo_perfect_decoder_and_clipping():
    x = np.array([[0.0, 1.0, 1.0]])
    zeros = np.zeros((1, 2))
    # x_hat == x exactly: probabilities clipped to [1e-6, 1-1e-6] -> -3*log(1-1e-6)
    got = neg_elbo(x, x[None], zeros, zeros, "bernoulli")
    assert np.allclose(got, -3 * math.log1p(-1e-6))
    assert np.all(np.isfinite(neg_elbo(x, 1.0 - x[None], zeros, zeros, "bernoulli")))


def test_neg_elbo_gaussian_and_kl():
    x = np.array([[0.2, 0.4]])
    x_hats = np.array([[[0.2, 0.4]], [[0.3, 0.4]]])  # K=2: errors 0 and (0.1, 0)
    sigma = 0.1
    const = 2 * (math.log(sigma) + 0.5 * math.log(2 * math.pi))
    rec = 0.5 * (0.0 + 0.5 * (0.1 / sigma) ** 2)  # mean over K of 0.5*sum((d/sigma)^2)
    mu, logvar = np.array([[1.0, 0.0]]), np.array([[0.0, math.log(2.0)]])
    kl = 0.5 * ((1 + 1 - 1 - 0) + (2 + 0 - 1 - math.log(2.0)))
    got = neg_elbo(x, x_hats, mu, logvar, "gaussian", sigma=sigma)
    assert np.allclose(got, rec + const + kl)
    # KL is 0 for mu=0, logvar=0, so the score is the reconstruction term alone
    z0 = np.zeros((1, 2))
    assert np.allclose(neg_elbo(x, x_hats, z0, z0, "gaussian", sigma=sigma), rec + const)
    # a larger sigma changes the answer (sigma is really used)
    assert not np.allclose(neg_elbo(x, x_hats, z0, z0, "gaussian", sigma=0.2), rec + const)


def test_neg_elbo_validation():
    x = np.zeros((2, 3))
    x_hats = np.zeros((4, 2, 3))
    z = np.zeros((2, 5))
    with pytest.raises(ConfigError, match="bernoulli"):
        neg_elbo(x, x_hats, z, z, "poisson")
    with pytest.raises(ConfigError, match="sigma"):
        neg_elbo(x, x_hats, z, z, "gaussian", sigma=0.0)
    with pytest.raises(InputError, match="x_hats"):
        neg_elbo(x, np.zeros((4, 3, 3)), z, z, "bernoulli")
    with pytest.raises(InputError, match="logvar"):
        neg_elbo(x, x_hats, z, np.zeros((2, 4)), "bernoulli")
    with pytest.raises(InputError, match="N=2"):
        neg_elbo(x, x_hats, np.zeros((3, 5)), np.zeros((3, 5)), "bernoulli")
    with pytest.raises(InputError, match="NaN"):
        neg_elbo(x, x_hats, z, np.full((2, 5), np.inf), "bernoulli")


def test_log_likelihood_lead_axes():
    x = np.full((2, 4), 1.0)
    x_hats = np.full((3, 2, 4), 0.5)
    assert log_likelihood(x, x_hats, "bernoulli", lead=2).shape == (3, 2)


def test_threshold_from_scores():
    s = np.arange(101, dtype=np.float64)
    assert threshold_from_scores(s, 0.99) == pytest.approx(99.0)
    assert threshold_from_scores(s, 1.0) == 100.0
    assert np.mean(s > threshold_from_scores(s, 0.9)) == pytest.approx(0.1, abs=0.01)
    for q in (0.0, 1.5, -0.1, "0.9", True):
        with pytest.raises(InputError, match="quantile"):
            threshold_from_scores(s, q)
    with pytest.raises(InputError):
        threshold_from_scores([], 0.9)
    with pytest.raises(InputError, match="1-d"):
        threshold_from_scores(np.zeros((2, 2)), 0.9)
