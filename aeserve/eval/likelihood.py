"""VAE likelihood through the Client: the ELBO and the importance-weighted bound (nats).

    from aeserve.eval.likelihood import likelihood, binarize
    xb = binarize(x_test, seed=0)                        # dynamic binarization, x ~ Bernoulli(pixels)
    likelihood(client, xb, k=5000, seed=0)               # {"elbo", "nll_iwae", "kl", ...}

For each image, ``k`` latents ``z_j = mu + exp(logvar/2) * eps_j`` are drawn from the
posterior (``eps`` counter-based: image i, sample j depends only on (seed, i, j)), decoded
by the served decoder in batches, and turned into log-weights
``log p(x|z_j) + log p(z_j) - log q(z_j|x)`` (``aeserve.metrics.vae_log_weights``). The
ELBO is their mean, the IWAE bound ``log mean exp`` (Burda et al. 2016); reported as
positive "NLL" numbers in nats per image (``nll_iwae = -IWAE``), the published convention
being K = 5000 on dynamically binarized MNIST with a Bernoulli decoder.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .. import metrics, noise
from ..checks import check_int
from ..errors import InputError

#: decoder rows per request wave; bounds memory to ~this many images of log-likelihood work
ROWS_PER_STEP = 4096


def binarize(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Dynamic binarization: each pixel becomes 1 with probability equal to its value (seeded)."""
    rng = np.random.default_rng(seed)
    return (rng.random(x.shape, dtype=np.float32) < x).astype(np.float32)


def log_weights(client: Any, x: np.ndarray, k: int, *, seed: int = 0, start: int = 0,
                progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(log_w (k, N), kl (N,))`` for images ``x`` through ``client`` (a VAE model).

    ``start`` offsets the image index used for the noise counter (so a slice of a bigger
    set draws the same noise as the whole). InputError if the model is not a VAE or k < 1.
    """
    card = client.card
    if not card.is_vae:
        raise InputError(f"likelihood bounds need a VAE; model {client.model!r} is family {card.family!r}")
    check_int(k, "k", minimum=1, detail=" (importance samples per image)")
    mu, logvar = client.encode_params(x)
    d, n = card.latent_dim, len(x)
    sigma = card.sigma
    per_step = max(1, ROWS_PER_STEP // k)          # images per wave
    sub = min(k, ROWS_PER_STEP)                     # samples per wave when k is huge
    out = np.empty((k, n))
    for i0 in range(0, n, per_step):
        i1 = min(n, i0 + per_step)
        m = i1 - i0
        for j0 in range(0, k, sub):
            j1 = min(k, j0 + sub)
            kk = j1 - j0
            z = noise.posterior_samples(mu[i0:i1], logvar[i0:i1], seed, k, start=start + i0,
                                        samples=range(j0, j1))           # (kk, m, d)
            x_hats = client.decode(z.reshape(kk * m, d)).reshape(kk, m, *x.shape[1:])
            out[j0:j1, i0:i1] = metrics.vae_log_weights(x[i0:i1], x_hats, z, mu[i0:i1], logvar[i0:i1],
                                                        likelihood=card.likelihood, sigma=sigma)
        if progress is not None:
            progress(m)
    return out, metrics.kl_normal_standard(mu, logvar)


def likelihood(client: Any, x: np.ndarray, *, k: int = 5000, seed: int = 0, binarized: bool = False,
               progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """ELBO and IWAE bound (nats per image) of images ``x`` under the client's VAE.

    Returns ``{"nll_iwae", "nll_elbo", "kl", "iwae_gap", "k", "n", "nll_iwae_se", ...}`` where
    the NLLs are ``-bound`` averaged over images (``*_se``: standard error over images).
    ``binarized`` only labels the result (the caller binarizes); a Gaussian decoder gives
    a continuous density whose "NLL" is not comparable with discrete-data figures.
    """
    lw, kl = log_weights(client, x, k, seed=seed, progress=progress)
    iwae = metrics.iwae_bound(lw)
    elbo = metrics.elbo_from_log_weights(lw)
    n = len(x)

    def se(v: np.ndarray) -> float:
        return float(np.std(v, ddof=1) / math.sqrt(n)) if n > 1 else float("nan")

    out = {
        "nll_iwae": float(-iwae.mean()), "nll_iwae_se": se(iwae),
        "nll_elbo": float(-elbo.mean()), "nll_elbo_se": se(elbo),
        "kl": float(kl.mean()), "iwae_gap": float((iwae - elbo).mean()),
        "k": int(k), "n": n, "likelihood": client.card.likelihood, "binarized": bool(binarized),
    }
    if k >= 50:  # the IWAE k=50 figure of Burda et al. from the first 50 samples
        out["nll_iwae_k50"] = float(-metrics.iwae_bound(lw[:50]).mean())
    if client.card.likelihood == "gaussian":
        out["note"] = (f"gaussian decoder (sigma {client.card.sigma}): a continuous "
                       "density, not comparable with NLLs on binarized data")
    elif not binarized:
        out["note"] = "bernoulli decoder on grey-level pixels: a cross-entropy, not a likelihood of binary data"
    return out
