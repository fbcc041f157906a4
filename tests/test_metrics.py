"""Each metric against a case with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aeserve import metrics
from aeserve.errors import InputError

RNG = np.random.default_rng(0)


# ---- reconstruction ------------------------------------------------------------------------
def test_identity_reconstruction_has_zero_mse_and_infinite_psnr():
    x = RNG.random((8, 1, 28, 28)).astype(np.float32)
    assert metrics.mse(x, x) == 0.0
    assert metrics.psnr(x, x) == math.inf
    assert np.all(metrics.psnr(x, x, per_sample=True) == np.inf)


def test_psnr_known_values():
    x = np.zeros((2, 10))
    assert metrics.psnr(x, x + 0.1) == pytest.approx(20.0)
    assert metrics.psnr(x, x + 0.01) == pytest.approx(40.0)
    assert metrics.psnr(x, x + 0.5, data_range=255.0) == pytest.approx(10 * math.log10(255.0 ** 2 / 0.25))


def test_mse_per_sample_and_psnr_of_mean_differs_from_mean_psnr():
    x = np.zeros((2, 4))
    y = np.stack([np.full(4, 0.1), np.full(4, 0.01)])
    np.testing.assert_allclose(metrics.mse(x, y, per_sample=True), [0.01, 0.0001])
    assert metrics.mse(x, y) == pytest.approx(0.00505)
    np.testing.assert_allclose(metrics.psnr(x, y, per_sample=True), [20.0, 40.0])
    assert metrics.psnr(x, y) == pytest.approx(10 * math.log10(1 / 0.00505))


@pytest.mark.parametrize("bad", [np.full((2, 3), np.nan), np.zeros((3, 3)), np.zeros((0, 3))])
def test_reconstruction_bad_input(bad):
    with pytest.raises(InputError):
        metrics.mse(np.zeros((2, 3)), bad)


# ---- AUROC ---------------------------------------------------------------------------------
def test_auroc_perfect_reversed_and_chance():
    labels = np.r_[np.zeros(50), np.ones(50)].astype(bool)
    scores = np.r_[RNG.random(50), 2 + RNG.random(50)]
    assert metrics.auroc(scores, labels) == 1.0
    assert metrics.auroc(-scores, labels) == 0.0
    noise = RNG.random(20000)
    assert metrics.auroc(noise, RNG.random(20000) < 0.5) == pytest.approx(0.5, abs=0.02)


def test_auroc_equals_pairwise_probability():
    s_norm, s_anom = RNG.normal(0, 1, 300), RNG.normal(1, 1, 200)
    expected = np.mean(s_anom[:, None] > s_norm[None, :])
    got = metrics.auroc(np.r_[s_norm, s_anom], np.r_[np.zeros(300), np.ones(200)])
    assert got == pytest.approx(expected, abs=1e-12)


def test_auroc_needs_both_classes():
    with pytest.raises(InputError, match="both"):
        metrics.auroc([0.1, 0.2], [1, 1])
    with pytest.raises(InputError, match="binary"):
        metrics.auroc([0.1, 0.2, 0.3], [0, 1, 2])


# ---- likelihood bounds ---------------------------------------------------------------------
def _linear_gaussian(x: float, s: float, m: float, v: float, k: int, n: int, rng):
    """Model p(z)=N(0,1), p(x|z)=N(z, s^2); proposal q=N(m, v). log-weights (k, n)."""
    z = m + math.sqrt(v) * rng.standard_normal((k, n, 1))
    xs = np.full((n, 1), x)
    mu, logvar = np.full((n, 1), m), np.full((n, 1), math.log(v))
    return metrics.vae_log_weights(xs, z, z, mu, logvar, likelihood="gaussian", sigma=s)


def test_iwae_with_k1_equals_elbo_in_expectation_and_tightens_with_k():
    x, s, m, v = 0.7, 0.5, 0.2, 0.3          # a deliberately poor proposal
    log_px = -0.5 * (math.log(2 * math.pi * (1 + s * s)) + x * x / (1 + s * s))
    # closed-form ELBO: E_q log N(x; z, s^2) - KL(q || p)
    elbo = (-0.5 * math.log(2 * math.pi * s * s) - ((x - m) ** 2 + v) / (2 * s * s)
            - 0.5 * (v + m * m - 1 - math.log(v)))
    rng = np.random.default_rng(1)
    k1 = metrics.iwae_bound(_linear_gaussian(x, s, m, v, 1, 200_000, rng))
    assert k1.mean() == pytest.approx(elbo, abs=4 * k1.std() / math.sqrt(k1.size))
    lw = _linear_gaussian(x, s, m, v, 1, 200_000, rng)
    np.testing.assert_allclose(metrics.elbo_from_log_weights(lw), metrics.iwae_bound(lw))
    k50 = metrics.iwae_bound(_linear_gaussian(x, s, m, v, 50, 2000, rng)).mean()
    k5000 = metrics.iwae_bound(_linear_gaussian(x, s, m, v, 5000, 20, rng)).mean()
    assert elbo < k50 < log_px
    assert k5000 == pytest.approx(log_px, abs=5e-3)      # unbiased-ish for large K (noise ~1e-3)
    assert abs(k5000 - log_px) < abs(k50 - log_px)


def test_iwae_with_true_posterior_is_exact():
    x, s = -0.4, 0.8
    m, v = x / (1 + s * s), s * s / (1 + s * s)
    log_px = -0.5 * (math.log(2 * math.pi * (1 + s * s)) + x * x / (1 + s * s))
    lw = _linear_gaussian(x, s, m, v, 7, 5, np.random.default_rng(2))
    np.testing.assert_allclose(lw, log_px, atol=1e-10)        # zero-variance weights
    np.testing.assert_allclose(metrics.iwae_bound(lw), log_px, atol=1e-10)


def test_log_mean_exp_is_stable():
    a = np.array([[1000.0], [1000.0]])
    assert metrics.log_mean_exp(a)[0] == pytest.approx(1000.0)


def test_kl_posterior_equal_to_prior_is_zero_and_matches_monte_carlo():
    assert np.all(metrics.kl_normal_standard(np.zeros((3, 16)), np.zeros((3, 16))) == 0.0)
    mu, logvar = np.array([[0.5, -1.0]]), np.array([[-0.3, 0.4]])
    z = mu + np.exp(0.5 * logvar) * np.random.default_rng(3).standard_normal((400_000, 1, 2))
    mc = np.mean(metrics.log_normal(z, mu, logvar) - metrics.log_standard_normal(z))
    assert metrics.kl_normal_standard(mu, logvar)[0] == pytest.approx(mc, abs=5e-3)


def test_log_bernoulli_matches_formula_and_clips():
    x = np.array([[1.0, 0.0, 1.0]])
    p = np.array([[0.9, 0.2, 0.5]])
    assert metrics.log_bernoulli(x, p)[0] == pytest.approx(math.log(0.9) + math.log(0.8) + math.log(0.5))
    assert np.isfinite(metrics.log_bernoulli(x, np.array([[0.0, 1.0, 0.0]]))[0])


def test_vae_log_weights_shapes_and_errors():
    x = RNG.random((4, 1, 2, 2)).round()
    lw = metrics.vae_log_weights(x, RNG.random((3, 4, 1, 2, 2)), RNG.normal(size=(3, 4, 5)),
                                 np.zeros((4, 5)), np.zeros((4, 5)), likelihood="bernoulli")
    assert lw.shape == (3, 4)
    with pytest.raises(InputError):
        metrics.vae_log_weights(x, RNG.random((3, 5, 1, 2, 2)), RNG.normal(size=(3, 4, 5)),
                                np.zeros((4, 5)), np.zeros((4, 5)), likelihood="bernoulli")
    with pytest.raises(InputError, match="likelihood"):
        metrics.vae_log_weights(x, RNG.random((3, 4, 1, 2, 2)), RNG.normal(size=(3, 4, 5)),
                                np.zeros((4, 5)), np.zeros((4, 5)), likelihood="poisson")


# ---- generation quality --------------------------------------------------------------------
def test_frechet_distance_of_identical_sets_is_zero():
    f = RNG.normal(size=(500, 32))
    assert metrics.frechet_distance(f, f) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_known_gaussians():
    d = 4
    # mean shift only
    assert metrics.frechet_distance_from_stats(np.zeros(d), np.eye(d), np.full(d, 2.0), np.eye(d)) == pytest.approx(4 * d)
    # N(0, I) vs N(0, 4I): d * (1 + 4 - 2*2) = d
    assert metrics.frechet_distance_from_stats(np.zeros(d), np.eye(d), np.zeros(d), 4 * np.eye(d)) == pytest.approx(d)
    # singular covariances still give a finite answer
    sing = np.diag([1.0, 0.0, 0.0, 0.0])
    assert metrics.frechet_distance_from_stats(np.zeros(d), sing, np.zeros(d), sing) == pytest.approx(0.0, abs=1e-4)


def test_frechet_distance_grows_with_shift():
    a = RNG.normal(size=(2000, 8))
    assert metrics.frechet_distance(a, a + 0.1) < metrics.frechet_distance(a, a + 1.0)


def test_label_entropy_and_confident_share():
    assert metrics.label_entropy(np.arange(100) % 10, 10) == pytest.approx(math.log(10))
    assert metrics.label_entropy(np.full(50, 3), 10) == 0.0
    probs = metrics.softmax(np.array([[10.0, 0, 0], [1.0, 1.0, 1.0], [0, 0, 5.0], [0, 0.1, 0]]))
    np.testing.assert_allclose(probs.sum(1), 1.0)
    assert metrics.confident_share(probs, 0.9) == 0.5
    with pytest.raises(InputError):
        metrics.label_entropy(np.array([0, 10]), 10)
    with pytest.raises(InputError):
        metrics.confident_share(probs, 1.5)


BAD_VALUES = [None, "abc", [], [[1, 2], [3]], np.zeros((0,)), np.array([np.nan]), {"a": 1}, 1e309, -1, 0, True,
              object(), np.zeros((2, 2, 2)), np.array(["a", "b"]), 2.5]


@pytest.mark.parametrize("name", metrics.__all__)
def test_no_foreign_exception_for_any_bad_argument(name):
    """Every argument of every public metric, replaced by each bad value: typed errors only."""
    import inspect
    import warnings

    from aeserve.errors import AeserveError

    fn = getattr(metrics, name)
    params = list(inspect.signature(fn).parameters.values())
    required = [p for p in params if p.default is inspect.Parameter.empty and p.kind == p.POSITIONAL_OR_KEYWORD]
    keywords = {p.name: "bernoulli" for p in params
                if p.default is inspect.Parameter.empty and p.kind == p.KEYWORD_ONLY}
    optional = [p.name for p in params if p.default is not inspect.Parameter.empty]
    for base in (np.full((3, 4), 0.5), np.ones((2, 3, 4)), np.arange(4.0)):
        for slot in range(len(required) + len(optional)):
            for bad in BAD_VALUES:
                args, kw = [base] * len(required), dict(keywords)
                if slot < len(required):
                    args[slot] = bad
                else:
                    kw[optional[slot - len(required)]] = bad
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        fn(*args, **kw)
                    except AeserveError:
                        pass
