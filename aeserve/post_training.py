"""Post-training measurements of a torch autoencoder, as model-card entries.

    from aeserve import post_training as ev
    card = card.with_extra(**ev.reconstruction_metrics(model, x_test))   # metrics.test_mse, test_psnr
    card = card.with_extra(**ev.elbo_metrics(model, x_test, seed=0))     # VAE: metrics.test_elbo
    card = card.with_extra(**ev.denoising_metrics(model, x_test, seed=0)) # DAE: metrics.test_denoise_mse
    card = card.with_extra(**ev.anomaly_calibration(model, x_val))       # anomaly.*
    card = card.with_extra(**ev.latent_stats(model, x_train))            # latent.*

Inputs are float tensors ``(N, *input_shape)`` in [0, 1] on the model's device; every
function puts the model in eval mode, runs without gradients, in batches, and returns
a dict whose keys are card keys (without the ``aeserve.`` prefix). The reconstruction
used everywhere is the deterministic one a deployed model computes:
``decoder(encoder(x))``, the VAE decoding its posterior mean ``mu``.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from .errors import InputError
from .models.dae import corrupt
from .models.vae import kl_to_standard_normal

EVAL_BATCH = 1024
QUANTILES = (0.5, 0.9, 0.95, 0.99, 0.999)
THRESHOLD_QUANTILE = 0.99
ELBO_SAMPLES = 1


def _batched(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    if x.shape[0] == 0:
        raise InputError("cannot evaluate on an empty set of images; expected at least one sample")
    with torch.no_grad():
        return torch.cat([fn(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def _code(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    z = model.encoder(x)
    return z[0] if isinstance(z, tuple) else z


def reconstruction_errors(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared reconstruction error, shape ``(N,)`` (the "mse" anomaly score)."""
    model.eval()
    return _batched(lambda b: (model(b) - b).pow(2).flatten(1).mean(1), x)


def reconstruction_metrics(model: torch.nn.Module, x: torch.Tensor, prefix: str = "test") -> dict[str, float]:
    """``{"metrics.test_mse": mean per-pixel squared error, "metrics.test_psnr": dB, peak 1}``."""
    mse = float(reconstruction_errors(model, x).double().mean())
    psnr = 10.0 * math.log10(1.0 / mse) if mse > 0 else float("inf")
    return {f"metrics.{prefix}_mse": mse, f"metrics.{prefix}_psnr": psnr}


def log_likelihood(model: torch.nn.Module, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-sample ``log p(x | z)`` in nats under the model's likelihood, normalising constant included."""
    ll = -model.recon_nll(logits, x)
    if model.card.likelihood == "gaussian":
        sigma = float(model.hparams["sigma"])
        ll = ll - 0.5 * math.log(2.0 * math.pi * sigma * sigma) * x[0].numel()
    return ll


def elbo(model: torch.nn.Module, x: torch.Tensor, samples: int = ELBO_SAMPLES, seed: int = 0) -> torch.Tensor:
    """Per-image ELBO in nats, shape ``(N,)``: ``E_q[log p(x|z)] - KL(q(z|x) || N(0, I))``.

    The expectation is estimated by averaging ``samples`` (default 1) reparameterised
    draws ``z = mu + exp(logvar/2) * eps`` per image (eps from a generator seeded with
    ``seed``; never the posterior mean), an unbiased estimate of the ELBO; the KL is the closed form, with weight 1 whatever
    the training beta was. VAE only.
    """
    if not model.card.is_vae:
        raise InputError(f"the ELBO is defined for the vae family only, not {model.card.family!r}")
    model.eval()
    gen = torch.Generator().manual_seed(seed)

    def one(b: torch.Tensor) -> torch.Tensor:
        mu, logvar = model.encoder(b)
        std = (0.5 * logvar).exp()
        ll = torch.zeros(b.shape[0], dtype=torch.float64, device=b.device)
        for _ in range(samples):
            eps = torch.randn(mu.shape, generator=gen, dtype=mu.dtype).to(mu.device)
            ll += log_likelihood(model, model.decoder.logits(mu + std * eps), b).double()
        return ll / samples - kl_to_standard_normal(mu, logvar).double()

    return _batched(one, x)


def elbo_metrics(model: torch.nn.Module, x: torch.Tensor, seed: int = 0, prefix: str = "test") -> dict[str, float]:
    """``{"metrics.test_elbo": mean per-image ELBO (nats)}`` for a VAE, ``{}`` otherwise."""
    if not model.card.is_vae:
        return {}
    return {f"metrics.{prefix}_elbo": float(elbo(model, x, seed=seed).mean())}


def denoising_metrics(model: torch.nn.Module, x: torch.Tensor, seed: int = 0,
                      prefix: str = "test") -> dict[str, float]:
    """DAE only (``{}`` otherwise): corrupt ``x`` with the model's own noise and level
    (seeded), then ``metrics.test_noisy_mse`` = MSE(noisy, clean) and
    ``metrics.test_denoise_mse`` = MSE(model(noisy), clean), per pixel."""
    if model.card.family != "dae":
        return {}
    gen = torch.Generator().manual_seed(seed)
    noise, level = model.hparams["noise"], float(model.hparams["noise_level"])
    noisy = torch.cat([corrupt(x[i:i + EVAL_BATCH].cpu(), noise, level, generator=gen).to(x.device)
                       for i in range(0, x.shape[0], EVAL_BATCH)])
    model.eval()
    denoised = _batched(lambda b: model(b), noisy)
    return {f"metrics.{prefix}_noisy_mse": float((noisy - x).double().pow(2).mean()),
            f"metrics.{prefix}_denoise_mse": float((denoised - x).double().pow(2).mean())}


def anomaly_calibration(model: torch.nn.Module, x_normal: torch.Tensor) -> dict[str, object]:
    """Score statistics on held-out NORMAL data, score = per-sample mean squared error.

    Returns ``anomaly.method="mse"``, ``anomaly.mean``, ``anomaly.std``, ``anomaly.quantiles``
    (``{"0.5": v, ..., "0.999": v}``), ``anomaly.threshold`` (the 0.99 quantile) and
    ``anomaly.threshold_quantile="0.99"``.
    """
    scores = reconstruction_errors(model, x_normal).double().cpu().numpy()
    qs = {str(q): float(np.quantile(scores, q)) for q in QUANTILES}
    return {
        "anomaly.method": "mse",
        "anomaly.mean": float(scores.mean()),
        "anomaly.std": float(scores.std()),
        "anomaly.quantiles": qs,
        "anomaly.threshold": qs[str(THRESHOLD_QUANTILE)],
        "anomaly.threshold_quantile": str(THRESHOLD_QUANTILE),
    }


def latent_stats(model: torch.nn.Module, x: torch.Tensor) -> dict[str, list[float]]:
    """Per-dimension ``latent.mean/std/min/max`` of the code over ``x`` (VAE: of ``mu``)."""
    model.eval()
    z = _batched(lambda b: _code(model, b), x).double()
    return {
        "latent.mean": z.mean(0).tolist(),
        "latent.std": z.std(0, unbiased=False).tolist(),
        "latent.min": z.min(0).values.tolist(),
        "latent.max": z.max(0).values.tolist(),
    }
