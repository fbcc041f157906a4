"""Fitting the latent prior (ex-post density estimation) with scikit-learn.

    from aeserve.prior_fit import fit_prior, fit_model_prior
    prior, report = fit_prior(codes, labels)                  # LatentPrior + what was chosen
    entries, report = fit_model_prior(client)                 # card entries for client's model
    # CLI: aeserve fit-prior --model mnist_vae [--out export/priors/mnist_vae.json]

A Gaussian mixture with full covariances is fitted to the encoder's codes of the training
split (VAE: posterior means), one mixture per class where the data has labels. The number
of components of each mixture is chosen by the mean log-likelihood of a seeded held-out
10% of its codes, among ``CANDIDATES`` no larger than what the card budget allows (the
prior's card cost is ``component_bytes(dim)`` per component; ``budget_bytes`` bounds the
total). The chosen mixtures are refitted on all codes. Needs scikit-learn (``eval`` extra).

``fit_model_prior`` also calibrates the ``combined`` anomaly score on the held-out images:
mean and standard deviation of the negative log-density of their codes and of the log of
their reconstruction error, stored as ``aeserve.prior.calibration``.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, Callable, Sequence

import numpy as np

from .errors import ConfigError, DataError, InputError, SplitNotFoundError
from .prior import CALIBRATION_KEY, CLASS_NAMES_KEY, LatentPrior, component_bytes

__all__ = ["fit_prior", "fit_model_prior", "CANDIDATES", "DEFAULT_BUDGET_BYTES"]

CANDIDATES = (1, 2, 4, 8, 12, 16, 24, 32)
DEFAULT_BUDGET_BYTES = 96 * 1024
HOLDOUT = 0.1
REG_COVAR = 1e-5
MIN_CODES = 20


def _split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    cut = max(1, int(round(n * HOLDOUT)))
    return perm[cut:], perm[:cut]


def _fit_one(codes: np.ndarray, k_max: int, seed: int) -> tuple[Any, dict[str, float]]:
    """Best-of-candidates mixture for one set of codes: (fitted GaussianMixture, {K: held-out ll})."""
    from sklearn.mixture import GaussianMixture

    fit_idx, held_idx = _split(len(codes), seed)
    ks = sorted({k for k in CANDIDATES if k <= k_max} | {k_max})
    scores: dict[str, float] = {}
    for k in ks:
        if k > len(fit_idx) // 2:
            break
        gm = GaussianMixture(k, covariance_type="full", reg_covar=REG_COVAR, init_params="k-means++", random_state=seed)
        scores[str(k)] = float(gm.fit(codes[fit_idx]).score(codes[held_idx]))
    best = int(max(scores, key=lambda k: scores[k]))
    gm = GaussianMixture(best, covariance_type="full", reg_covar=REG_COVAR, init_params="k-means++", random_state=seed).fit(codes)
    return gm, scores


def fit_prior(codes: Any, labels: Any = None, *, budget_bytes: int = DEFAULT_BUDGET_BYTES, seed: int = 0,
              progress: Callable[[str], None] | None = None) -> tuple[LatentPrior, dict[str, Any]]:
    """Fit the mixture prior to ``codes`` (N, d), per class of ``labels`` (N,) ints if given.

    Returns ``(prior, report)``; the report has the components per mixture, the held-out
    log-likelihood of every candidate and the prior's card bytes. Raises InputError for
    codes that are not a finite (N, d) array with enough rows per class, or a budget too
    small for one component per class."""
    z = np.asarray(codes, np.float64)
    if z.ndim != 2 or z.shape[0] < MIN_CODES or not np.all(np.isfinite(z)):
        raise InputError(f"codes must be a finite (N >= {MIN_CODES}, latent_dim) array, got shape {z.shape}")
    y = None if labels is None else np.asarray(labels)
    if y is not None and (y.shape != (len(z),) or not np.issubdtype(y.dtype, np.integer) or np.any(y < 0)):
        raise InputError(f"labels must be ({len(z)},) non-negative integers, got shape {y.shape}")
    groups = [None] if y is None else [int(c) for c in np.unique(y)]
    small = [g for g in groups if (len(z) if g is None else int(np.sum(y == g))) < MIN_CODES]
    if small:
        raise InputError(f"class(es) {small} have fewer than {MIN_CODES} codes; a mixture needs at least {MIN_CODES}")
    k_max = int(budget_bytes) // component_bytes(z.shape[1]) // len(groups)
    if k_max < 1:
        raise InputError(f"a prior budget of {budget_bytes} bytes cannot hold one component per class "
                         f"({component_bytes(z.shape[1])} bytes each, {len(groups)} classes)")
    k_max = min(k_max, CANDIDATES[-1])
    import sklearn.mixture  # noqa: F401  (load its BLAS before limiting the thread pools)
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    started = time.perf_counter()
    weights, means, chols, comp_labels, per_group = [], [], [], [], {}
    with threadpool_limits(1):  # small matrices: threaded BLAS only adds contention (8x slower on 2 busy cores)
        mixtures = [_fit_one(z if g is None else z[y == g], k_max, seed) for g in groups]
    for g, (gm, scores) in zip(groups, mixtures):
        sel = z if g is None else z[y == g]
        share = len(sel) / len(z)
        weights.append(gm.weights_ * share)
        means.append(gm.means_)
        chols.append(np.linalg.cholesky(gm.covariances_))
        comp_labels += [g] * gm.n_components
        per_group["all" if g is None else str(g)] = {"components": int(gm.n_components), "n": int(len(sel)),
                                                      "heldout_loglik": scores}
        if progress is not None:
            progress(f"prior: {'all codes' if g is None else f'class {g}'}: {gm.n_components} components "
                     f"(held-out log-likelihood {scores[str(gm.n_components)]:.3f} nats per code)")
    w = np.concatenate(weights)
    prior = LatentPrior(w / w.sum(), np.concatenate(means), np.concatenate(chols),
                        None if y is None else np.asarray(comp_labels))
    report = {"components": prior.n_components, "per_class": per_group, "dim": prior.dim, "n": int(len(z)),
              "card_bytes": len(prior.to_json()), "budget_bytes": int(budget_bytes), "k_max": k_max,
              "seconds": round(time.perf_counter() - started, 2), "seed": seed}
    return prior, report


def _stats(v: np.ndarray) -> list[float]:
    return [float(np.mean(v)), float(max(np.std(v), 1e-12))]


def fit_model_prior(client: Any, data: str | None = None, *, limit: int | None = None,
                    classes: Sequence[int] | None = None, labelled: bool = True,
                    budget_bytes: int = DEFAULT_BUDGET_BYTES, seed: int = 0,
                    progress: Callable[[str], None] | None = None) -> tuple[dict[str, str], dict[str, Any]]:
    """Encode the training split of ``data`` (default: the card's dataset; all of a user file
    without splits) with ``client``'s
    model, fit the prior and calibrate the combined anomaly score.

    Returns ``(card entries, report)``: entries are ``prior``, ``prior.sha256``,
    ``prior.calibration`` and, for data with class names, ``class_names``. ``classes``
    restricts the data (one-class models); ``labelled=False`` ignores labels.
    Raises DataError (data missing or of the wrong shape), InputError (see ``fit_prior``)."""
    from . import anomaly
    from .data import load_dataset

    name = data or client.card.dataset
    try:
        train = load_dataset(name, "train", classes=classes, limit=limit)
    except SplitNotFoundError:  # a user file (.npy, .npz, PNG folder) without splits: all of it
        train = load_dataset(name, "all", classes=classes, limit=limit)
    if tuple(train.input_shape) != tuple(client.card.input_shape):
        raise DataError(f"data {name!r} has samples of shape {train.input_shape}; model {client.model!r} "
                        f"expects {tuple(client.card.input_shape)}: pass data the model was trained on")
    codes = client.encode(train.x)
    labels = train.y if labelled and train.y is not None and len(np.unique(train.y)) > 1 else None
    prior, report = fit_prior(codes, labels, budget_bytes=budget_bytes, seed=seed, progress=progress)
    _, held = _split(len(codes), seed)
    nll = -prior.log_density(codes[held])
    log_mse = np.log(np.maximum(anomaly.mse_score(train.x[held], client.decode(codes[held])), 1e-12))
    calibration = {"nll": _stats(nll), "log_mse": _stats(log_mse), "n": int(len(held))}
    entries = {**prior.card_entries(), CALIBRATION_KEY: json.dumps(calibration, separators=(",", ":"))}
    names = train.class_names
    if labels is not None and names:
        entries[CLASS_NAMES_KEY] = json.dumps(list(names), separators=(",", ":"))
    report.update({"data": train.name, "model": client.model, "calibration": calibration,
                   "entries_bytes": sum(len(k) + len(v) for k, v in entries.items())})
    if not math.isfinite(float(np.mean(nll))):
        raise ConfigError("the fitted prior gives non-finite densities on held-out codes; try another seed")
    return entries, report
