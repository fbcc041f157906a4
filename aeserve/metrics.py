"""Evaluation metrics, pure NumPy/SciPy/scikit-learn (no torch, no runtime).

    from aeserve import metrics
    metrics.mse(x, x_hat)                        # 0.0087  (mean over pixels and images)
    metrics.psnr(x, x_hat)                       # 20.6 dB (of the mean MSE; inf if identical)
    metrics.auroc(scores, is_anomaly)            # sklearn's roc_auc_score, in [0, 1]
    metrics.iwae_bound(log_w)                    # (N,) log p(x) lower bound from (K, N) log-weights
    metrics.frechet_distance(feats_a, feats_b)   # ~0 for identical sets
    metrics.label_entropy(labels, 10)            # nats, ln(10) = 2.303 when uniform

Images are arrays with the batch first; pixel values in [0, 1] (``data_range`` 1).
Every function raises ``aeserve.InputError`` (what was wrong, what was expected) on
mismatched shapes, empty input or non-finite values; no NumPy/SciPy traceback leaks out.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .checks import check_int, finite_array
from .errors import InputError

__all__ = [
    "mse", "psnr", "psnr_from_mse", "auroc",
    "log_mean_exp", "iwae_bound", "elbo_from_log_weights",
    "kl_normal_standard", "log_normal", "log_standard_normal",
    "log_bernoulli", "log_gaussian", "vae_log_weights",
    "frechet_distance", "feature_statistics", "frechet_distance_from_stats",
    "softmax", "label_entropy", "confident_share",
]

LOG_2PI = math.log(2.0 * math.pi)
BERNOULLI_EPS = 1e-6  # probabilities are clipped to [eps, 1 - eps] (same as aeserve.anomaly)


# ---- validation ------------------------------------------------------------------------
def _array(a, name: str, *, ndim_min: int = 1) -> np.ndarray:
    arr = finite_array(a, name)
    if arr.ndim < ndim_min:
        raise InputError(f"{name} must have at least {ndim_min} dimension(s), got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(f"{name} is empty; expected at least one value")
    return arr


def _values(a, name: str) -> np.ndarray:
    """Any-shape finite float64 array (scalars allowed); InputError otherwise."""
    return finite_array(a, name)


def _broadcast(arrays: dict[str, np.ndarray]) -> None:
    """InputError unless the named arrays broadcast against each other."""
    try:
        np.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
        raise InputError(f"shapes do not broadcast together: {shapes}; expected matching shapes") from None


def _positive(value, name: str) -> float:
    """``value`` as a finite float > 0; InputError otherwise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value <= 0:
        raise InputError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _pair(a, b, names: tuple[str, str] = ("x", "x_hat")) -> tuple[np.ndarray, np.ndarray]:
    x, y = _array(a, names[0]), _array(b, names[1])
    if x.shape != y.shape:
        raise InputError(f"{names[0]} and {names[1]} must have the same shape, got {x.shape} and {y.shape}")
    return x, y


# ---- reconstruction --------------------------------------------------------------------
def mse(x, x_hat, *, per_sample: bool = False) -> float | np.ndarray:
    """Mean squared error. ``per_sample=False``: one float over all values; ``True``:
    ``(N,)`` means over each sample's values (batch axis first).

    >>> mse(np.zeros((2, 4)), np.full((2, 4), 0.5))
    0.25
    """
    x, y = _pair(x, x_hat)
    if not _flag(per_sample, "per_sample"):
        return float(np.mean((x - y) ** 2))
    return ((x - y) ** 2).reshape(x.shape[0], -1).mean(axis=1)


def psnr_from_mse(err, data_range: float = 1.0):
    """PSNR in dB for a mean squared error (float or array): ``10 log10(range^2 / mse)``;
    ``inf`` where the error is 0."""
    err = _values(err, "mean squared error")
    data_range = _positive(data_range, "data_range")
    if np.any(err < 0):
        raise InputError("mean squared error must be >= 0")
    with np.errstate(divide="ignore"):
        out = 10.0 * np.log10(data_range ** 2 / err)
    return float(out) if out.ndim == 0 else out


def psnr(x, x_hat, *, data_range: float = 1.0, per_sample: bool = False) -> float | np.ndarray:
    """Peak signal-to-noise ratio in dB (``inf`` for identical inputs).

    ``per_sample=False`` is the PSNR of the MSE over the whole set (the usual
    dataset figure); ``per_sample=True`` gives ``(N,)`` per-image PSNRs (average them for
    the "mean per-image PSNR", which is higher for sets of uneven quality).

    >>> psnr(np.zeros((1, 4)), np.full((1, 4), 0.1))    # mse 0.01 -> 20 dB
    20.0
    """
    data_range = _positive(data_range, "data_range")
    return psnr_from_mse(mse(x, x_hat, per_sample=per_sample), data_range)


# ---- anomaly detection -----------------------------------------------------------------
def auroc(scores, labels) -> float:
    """Area under the ROC curve of ``scores`` (higher = more anomalous) for binary
    ``labels`` (1/True = anomaly), via ``sklearn.metrics.roc_auc_score``. In [0, 1]; 1 is
    a perfect separator, 0.5 chance. Raises InputError unless both classes occur."""
    from sklearn.metrics import roc_auc_score

    s = _array(scores, "scores")
    try:
        y = np.asarray(labels)
    except ValueError:
        raise InputError(f"labels must be a 1-d array of 0/1 values, got a ragged {type(labels).__name__}") from None
    if s.ndim != 1 or y.shape != s.shape:
        raise InputError(f"scores and labels must be 1-d of equal length, got {s.shape} and {y.shape}")
    uniq = np.unique(y)
    if not np.all(np.isin(uniq, (0, 1))):
        raise InputError(f"labels must be binary (0/1 or bool), got values {uniq[:5].tolist()}")
    if uniq.size != 2:
        raise InputError("AUROC needs both normal (0) and anomalous (1) samples; labels hold only one class")
    return float(roc_auc_score(y.astype(np.int64), s))


# ---- likelihood bounds -----------------------------------------------------------------
def log_mean_exp(a, axis: int = 0) -> np.ndarray:
    """``log(mean(exp(a), axis))`` computed stably with ``scipy.special.logsumexp``."""
    from scipy.special import logsumexp

    arr = _array(a, "log-weights")
    axis = check_int(axis, "axis", minimum=-arr.ndim, maximum=arr.ndim - 1, detail=f" (an axis of shape {arr.shape})")
    return logsumexp(arr, axis=axis) - math.log(arr.shape[axis])


def _log_weights(log_w) -> np.ndarray:
    w = _array(log_w, "log_w", ndim_min=2)
    if w.ndim != 2:
        raise InputError(f"log_w must be (K, N), got shape {w.shape}")
    return w


def iwae_bound(log_w) -> np.ndarray:
    """Importance-weighted lower bound on ``log p(x)`` (Burda et al. 2016) per sample.

    ``log_w``: ``(K, N)`` log importance weights ``log p(x, z_k) - log q(z_k | x)``, with
    ``z_k ~ q(z | x)``. Returns ``(N,)`` ``log (1/K) sum_k exp(log_w[k])``. With K = 1 it
    is the one-sample ELBO estimate; it increases towards ``log p(x)`` as K grows.
    """
    return log_mean_exp(_log_weights(log_w), axis=0)


def elbo_from_log_weights(log_w) -> np.ndarray:
    """Monte-Carlo ELBO per sample: the mean of ``(K, N)`` log-weights over K -> ``(N,)``."""
    return _log_weights(log_w).mean(axis=0)


def kl_normal_standard(mu, logvar) -> np.ndarray:
    """Closed-form ``KL(N(mu, diag(exp(logvar))) || N(0, I))`` per sample: ``(N, d) -> (N,)``.
    0 exactly when ``mu = 0`` and ``logvar = 0`` (posterior equal to the prior)."""
    m, lv = _pair(mu, logvar, ("mu", "logvar"))
    return 0.5 * (np.exp(lv) + m ** 2 - 1.0 - lv).reshape(m.shape[0], -1).sum(axis=1)


def log_normal(z, mu, logvar) -> np.ndarray:
    """``log N(z; mu, diag(exp(logvar)))`` summed over the last axis; broadcasts over leading axes."""
    z, mu, logvar = (_values(a, n) for a, n in ((z, "z"), (mu, "mu"), (logvar, "logvar")))
    _broadcast({"z": z, "mu": mu, "logvar": logvar})
    return -0.5 * (LOG_2PI + logvar + (z - mu) ** 2 * np.exp(-logvar)).sum(axis=-1)


def log_standard_normal(z) -> np.ndarray:
    """``log N(z; 0, I)`` summed over the last axis."""
    z = _values(z, "z")
    return -0.5 * (LOG_2PI + z ** 2).sum(axis=-1)


def _flat_sum(a: np.ndarray, lead: int) -> np.ndarray:
    lead = check_int(lead, "lead", minimum=0, maximum=a.ndim, detail=f" (leading axes kept of shape {a.shape})")
    return a.reshape(*a.shape[:lead], -1).sum(axis=-1)


def log_bernoulli(x, p, *, lead: int = 1) -> np.ndarray:
    """Bernoulli log-likelihood ``sum x log p + (1-x) log(1-p)`` over all but the first
    ``lead`` axes; ``p`` clipped to ``[1e-6, 1-1e-6]``. ``x`` broadcasts against ``p``."""
    x, p = _values(x, "x"), np.clip(_values(p, "p"), BERNOULLI_EPS, 1.0 - BERNOULLI_EPS)
    _broadcast({"x": x, "p": p})
    return _flat_sum(x * np.log(p) + (1.0 - x) * np.log1p(-p), lead)


def log_gaussian(x, mean, sigma: float, *, lead: int = 1) -> np.ndarray:
    """Gaussian log-density with fixed ``sigma`` (constant included) over all but the first
    ``lead`` axes."""
    sigma = _positive(sigma, "sigma")
    x, mean = _values(x, "x"), _values(mean, "mean")
    _broadcast({"x": x, "mean": mean})
    d = x - mean
    return _flat_sum(-0.5 * (d / sigma) ** 2 - math.log(sigma) - 0.5 * LOG_2PI, lead)


def vae_log_weights(x, x_hats, z, mu, logvar, *, likelihood: str, sigma: float = 0.1) -> np.ndarray:
    """Log importance weights ``log p(x|z_k) + log p(z_k) - log q(z_k|x)`` -> ``(K, N)``.

    ``x``: ``(N, *shape)`` data; ``x_hats``: ``(K, N, *shape)`` decoder means for
    ``z``: ``(K, N, d)`` drawn from ``q = N(mu, exp(logvar))`` with ``mu, logvar``: ``(N, d)``;
    ``likelihood`` "bernoulli" (``x`` binary for a proper likelihood) or "gaussian" with
    fixed ``sigma`` (a density: not comparable with discrete NLLs).
    """
    x, x_hats, z = _values(x, "x"), _values(x_hats, "x_hats"), _values(z, "z")
    if x_hats.ndim < 3 or z.ndim != 3 or x_hats.shape[:2] != z.shape[:2] or x_hats.shape[1:] != np.shape(x):
        raise InputError(f"expected x (N,...), x_hats (K,N,...) and z (K,N,d); got {np.shape(x)}, "
                         f"{x_hats.shape}, {z.shape}")
    if likelihood == "bernoulli":
        log_px = log_bernoulli(x, x_hats, lead=2)
    elif likelihood == "gaussian":
        log_px = log_gaussian(x, x_hats, sigma, lead=2)
    else:
        raise InputError(f"unknown likelihood {likelihood!r}; expected 'bernoulli' or 'gaussian'")
    return log_px + log_standard_normal(z) - log_normal(z, mu, logvar)


# ---- generation quality ----------------------------------------------------------------
def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(d,)`` and covariance ``(d, d)`` of ``(N, d)`` features (N >= 2)."""
    f = _array(features, "features", ndim_min=2)
    if f.ndim != 2 or f.shape[0] < 2:
        raise InputError(f"features must be (N, d) with N >= 2, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def frechet_distance_from_stats(mu1, cov1, mu2, cov2, *, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians ``N(mu1, cov1)`` and ``N(mu2, cov2)``:
    ``|mu1-mu2|^2 + tr(cov1 + cov2 - 2 sqrtm(cov1 cov2))`` (the FID formula), using
    ``scipy.linalg.sqrtm``; a tiny diagonal offset is added if the product is singular."""
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(_values(mu1, "mu1")), np.atleast_1d(_values(mu2, "mu2"))
    cov1, cov2 = np.atleast_2d(_values(cov1, "cov1")), np.atleast_2d(_values(cov2, "cov2"))
    eps = _positive(eps, "eps")
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (mu1.size, mu1.size):
        raise InputError(f"statistics do not match: mu {mu1.shape} vs {mu2.shape}, cov {cov1.shape} vs {cov2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular products are handled below
        covmean = linalg.sqrtm(cov1 @ cov2)
        if not np.all(np.isfinite(covmean)):
            offset = np.eye(cov1.shape[0]) * eps
            covmean = linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
    covmean = np.real(covmean)
    fd = float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(covmean))
    return max(fd, 0.0)


def frechet_distance(features_a, features_b) -> float:
    """Fréchet distance between two sets of ``(N, d)`` feature vectors (each set fitted by a
    Gaussian). ~0 for identical sets; grows with the shift in mean and covariance."""
    return frechet_distance_from_stats(*feature_statistics(features_a), *feature_statistics(features_b))


def softmax(logits) -> np.ndarray:
    """Row-wise softmax of ``(N, C)`` logits, numerically stable."""
    a = _array(logits, "logits", ndim_min=2)
    a = a - a.max(axis=1, keepdims=True)
    e = np.exp(a)
    return e / e.sum(axis=1, keepdims=True)


def label_entropy(labels, n_classes: int) -> float:
    """Entropy (nats) of the histogram of integer ``labels`` over ``n_classes`` classes:
    ``ln(n_classes)`` when uniform, 0 when every label is the same (mode collapse)."""
    n_classes = check_int(n_classes, "n_classes", minimum=1)
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0 or not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"labels must be a non-empty 1-d integer array, got {y.dtype} {y.shape}")
    if y.min() < 0 or y.max() >= n_classes:
        raise InputError(f"labels must lie in [0, {n_classes}), got range [{y.min()}, {y.max()}]")
    p = np.bincount(y, minlength=n_classes) / y.size
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def confident_share(probs, threshold: float = 0.9) -> float:
    """Share of rows of ``(N, C)`` class probabilities whose top probability is >= ``threshold``."""
    p = _array(probs, "probs", ndim_min=2)
    if p.ndim != 2:
        raise InputError(f"probs must be (N, C), got shape {p.shape}")
    if not 0.0 < _positive(threshold, "threshold") <= 1.0:
        raise InputError(f"threshold must be in (0, 1], got {threshold}")
    return float(np.mean(p.max(axis=1) >= threshold))
