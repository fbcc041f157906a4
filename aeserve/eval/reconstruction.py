"""Reconstruction and denoising quality through the Client, with PCA baselines.

    from aeserve.eval.reconstruction import reconstruction, denoising, PCABaseline
    pca = PCABaseline.fit(x_train, k=16)                  # sklearn PCA, seeded
    reconstruction(client, x_test, pca)                   # {"mse", "psnr", "psnr_mean", "pca": {...}}
    denoising(client, x_test, pca, seed=0)                # gaussian 0.3/0.5 (clipped), masking 0.25/0.5

Images are float32 ``(N, C, H, W)`` in [0, 1]. PSNR is ``10 log10(1 / MSE)`` of the
MSE over the whole set (``psnr``) and the mean of per-image PSNRs (``psnr_mean``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import metrics
from ..errors import InputError

#: the corruptions the denoising section measures: (name, kind, level)
NOISES: tuple[tuple[str, str, float], ...] = (
    ("gaussian_0.3", "gaussian", 0.3),
    ("gaussian_0.5", "gaussian", 0.5),
    ("masking_0.25", "masking", 0.25),
    ("masking_0.5", "masking", 0.5),
)


@dataclass
class PCABaseline:
    """Linear baseline: the top-``k`` principal subspace of the training images."""

    k: int
    mean: np.ndarray
    components: np.ndarray  # (k, D)

    @classmethod
    def fit(cls, x_train: np.ndarray, k: int, seed: int = 0) -> "PCABaseline":
        """Fit on ``(N, ...)`` images (randomized SVD, seeded). InputError if k >= D or N < 2."""
        from sklearn.decomposition import PCA

        flat = np.asarray(x_train, dtype=np.float32).reshape(len(x_train), -1)
        if not 1 <= k < min(flat.shape):
            raise InputError(f"PCA needs 1 <= k < min(N, D) = {min(flat.shape)}, got k={k}")
        pca = PCA(n_components=k, svd_solver="randomized", random_state=seed).fit(flat)
        return cls(k, pca.mean_.astype(np.float32), pca.components_.astype(np.float32))

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """Project onto the subspace and back (no clipping, as in the published figures)."""
        flat = np.asarray(x, dtype=np.float32).reshape(len(x), -1) - self.mean
        return ((flat @ self.components.T) @ self.components + self.mean).reshape(x.shape)


def quality(x: np.ndarray, x_hat: np.ndarray) -> dict[str, float]:
    """``{"mse", "psnr", "psnr_mean"}`` of ``x_hat`` against ``x``."""
    per = np.asarray(metrics.mse(x, x_hat, per_sample=True))
    return {"mse": float(per.mean()), "psnr": metrics.psnr_from_mse(float(per.mean())),
            "psnr_mean": float(np.mean(metrics.psnr_from_mse(per)))}


def reconstruction(client: Any, x: np.ndarray, pca: PCABaseline | None = None) -> dict[str, Any]:
    """Reconstruct ``x`` with the client's model (VAE: posterior mean) and score it."""
    out: dict[str, Any] = quality(x, client.reconstruct(x))
    if pca is not None:
        out["pca"] = {"k": pca.k, **quality(x, pca.reconstruct(x))}
        out["mse_vs_pca"] = out["mse"] / out["pca"]["mse"]
    return out


def corrupt(x: np.ndarray, kind: str, level: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of std ``level`` clipped to [0, 1], or masking (each value zeroed
    with probability ``level``). Same definitions as training (``aeserve.models.dae``)."""
    if kind == "gaussian":
        noisy = x + level * rng.standard_normal(x.shape, dtype=np.float32)
        return np.clip(noisy, 0.0, 1.0, out=noisy)
    if kind == "masking":
        return x * (rng.random(x.shape, dtype=np.float32) >= level)
    raise InputError(f"unknown noise {kind!r}; expected 'gaussian' or 'masking'")


def denoising(client: Any, x: np.ndarray, pca: PCABaseline | None = None, *, seed: int = 0,
              noises: tuple[tuple[str, str, float], ...] = NOISES) -> dict[str, Any]:
    """For each corruption: PSNR of the noisy input and of ``client.denoise(noisy)`` against the
    clean images (and of the PCA projection of the noisy input). Noise drawn with ``seed``."""
    out: dict[str, Any] = {}
    for i, (name, kind, level) in enumerate(noises):
        noisy = corrupt(x, kind, level, np.random.default_rng([seed, i]))
        row = {"psnr_noisy": quality(x, noisy)["psnr"], "psnr_denoised": quality(x, client.denoise(noisy))["psnr"]}
        if pca is not None:
            row["psnr_pca"] = quality(x, pca.reconstruct(noisy))["psnr"]
        out[name] = row
    return out
