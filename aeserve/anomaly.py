"""Anomaly scores in pure NumPy: reconstruction error and the VAE's negative ELBO.

    s = mse_score(x, x_hat)                                  # (N,) float64
    s = neg_elbo(x, x_hats, mu, logvar, "bernoulli")         # (N,) nats, x_hats (K, N, ...)
    thr = threshold_from_scores(s_normal, quantile=0.99)     # float
    flags = s > thr

``mse_score`` is the card's ``anomaly.method = "mse"``: per-sample mean squared error over
all pixels, the same definition training uses for calibration. Higher is more anomalous.
The likelihood and KL terms are those of ``aeserve.metrics`` (one definition for both).
"""

from __future__ import annotations

import math

import numpy as np

from . import metrics
from .checks import finite_array
from .errors import ConfigError, InputError

__all__ = ["mse_score", "neg_elbo", "log_likelihood", "threshold_from_scores", "LIKELIHOODS"]

LIKELIHOODS = ("bernoulli", "gaussian")


def _array(name: str, a, min_ndim: int = 1) -> np.ndarray:
    out = finite_array(a, name)
    if out.ndim < min_ndim or out.shape[0] == 0:
        raise InputError(f"{name} must be a non-empty array with >= {min_ndim} dims, got shape {out.shape}")
    return out


def mse_score(x, x_hat) -> np.ndarray:
    """Per-sample mean squared error (``aeserve.metrics.mse(..., per_sample=True)``).

    ``mse_score(x, client.reconstruct(x))`` -> (N,) float64. x, x_hat: same shape (N, ...).
    Raises InputError on a shape mismatch, empty input or NaN/Inf.
    """
    return np.asarray(metrics.mse(x, x_hat, per_sample=True))


def log_likelihood(x, x_hat, likelihood: str, sigma: float = 0.1, *, lead: int = 1) -> np.ndarray:
    """log p(x | x_hat) summed over pixels, in nats, per leading index.

    ``log_likelihood(x, x_hat, "bernoulli")`` -> (N,) (``lead=2`` with x_hat (K, N, ...)
    gives (K, N)). Bernoulli with x_hat clipped to [1e-6, 1-1e-6] (x in [0,1] as soft
    targets); gaussian N(x; x_hat, sigma^2) including ``-log(sigma) - log(2 pi)/2`` per pixel.
    Raises ConfigError for another likelihood or sigma <= 0 / not finite.
    """
    if likelihood == "bernoulli":
        return metrics.log_bernoulli(x, x_hat, lead=lead)
    if likelihood == "gaussian":
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not (math.isfinite(sigma) and sigma > 0):
            raise ConfigError(f"gaussian sigma must be a positive finite number, got {sigma!r}")
        return metrics.log_gaussian(x, x_hat, float(sigma), lead=lead)
    raise ConfigError(f"unknown likelihood {likelihood!r}; expected one of {', '.join(LIKELIHOODS)}")


def neg_elbo(x, x_hats, mu, logvar, likelihood: str, sigma: float = 0.1) -> np.ndarray:
    """Negative ELBO per sample, in nats (higher = more anomalous).

    ``neg_elbo(x, x_hats, mu, logvar, "bernoulli")`` -> (N,) float64 where
    ``x_hats[k] = decode(mu + exp(logvar/2) * eps_k)`` for K posterior samples:
    ``-(1/K) sum_k log p(x | x_hats[k]) + KL(q(z|x) || N(0, I))`` (the K-sample Monte-Carlo
    estimate of the reconstruction term plus the closed-form KL).
    In: x (N, ...), x_hats (K, N, ...), mu/logvar (N, latent). Raises InputError on shape
    mismatches or NaN/Inf, ConfigError on an unknown likelihood or bad sigma.
    """
    x = _array("x", x)
    x_hats = _array("x_hats", x_hats, 2)
    if x_hats.shape[1:] != x.shape:
        raise InputError(f"x_hats has shape {x_hats.shape}, expected (K, *{x.shape}) for x of shape {x.shape}")
    mu, logvar = _array("mu", mu, 2), _array("logvar", logvar, 2)
    if mu.ndim != 2 or mu.shape != logvar.shape or mu.shape[0] != x.shape[0]:
        raise InputError(f"mu {mu.shape} and logvar {logvar.shape} must both be (N={x.shape[0]}, latent_dim)")
    rec = np.zeros(x.shape[0])
    for x_hat in x_hats:  # one sample at a time: memory O(N * pixels)
        rec += log_likelihood(x, x_hat, likelihood, sigma)
    return -rec / x_hats.shape[0] + metrics.kl_normal_standard(mu, logvar)


def threshold_from_scores(scores, quantile: float) -> float:
    """The ``quantile`` of normal-data scores, used as the anomaly threshold.

    ``threshold_from_scores(mse_score(x, x_hat), 0.99)`` -> float; scores above it are
    anomalies (about 1% of normal data). quantile in (0, 1]; InputError otherwise or on
    empty / non-finite scores.
    """
    s = _array("scores", scores)
    if s.ndim != 1:
        raise InputError(f"scores must be 1-d (one per sample), got shape {s.shape}")
    if isinstance(quantile, bool) or not isinstance(quantile, (int, float, np.floating)) \
            or not 0.0 < float(quantile) <= 1.0:
        raise InputError(f"quantile must be a number in (0, 1], got {quantile!r}")
    return float(np.quantile(s, float(quantile)))
