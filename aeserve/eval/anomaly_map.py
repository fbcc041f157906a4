"""Anomaly-map localisation: pixel-level AUROC on test images with a pasted foreign patch.

    from aeserve.eval.anomaly_map import pasted_patches, localisation
    x_bad, truth = pasted_patches(x_mnist, x_fashion, seed=0)    # truth: (N, 1, H, W) bool
    localisation(client, x_mnist, x_fashion, x_train, seed=0)    # {"mse": {"pixel_auroc"}, "nll": ..., ...}

Protocol: into each test image a ``PATCH`` x ``PATCH`` square cut from the centre region
of a foreign image (e.g. Fashion-MNIST into MNIST) is pasted at a random position (seeded);
the pasted pixels are the positives, every other pixel a negative. The pixel AUROC ranks
all pixels of all images by their anomaly-map value. Baseline: the squared distance of
each pixel from the mean training image (``mean_image``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import metrics

PATCH = 10


def pasted_patches(x: np.ndarray, foreign: np.ndarray, *, seed: int = 0,
                   patch: int = PATCH) -> tuple[np.ndarray, np.ndarray]:
    """(images with a pasted patch, bool truth masks (N, 1, H, W)); foreign images are drawn with replacement."""
    rng = np.random.default_rng(seed)
    n, _, h, w = x.shape
    out, truth = x.copy(), np.zeros((n, 1, h, w), bool)
    src = rng.integers(0, len(foreign), n)
    lo_h, lo_w = (foreign.shape[2] - patch) // 2, (foreign.shape[3] - patch) // 2
    for i in range(n):
        t, l = int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1))
        st = lo_h + int(rng.integers(-2, 3))
        sl = lo_w + int(rng.integers(-2, 3))
        out[i, :, t:t + patch, l:l + patch] = foreign[src[i], :, st:st + patch, sl:sl + patch]
        truth[i, 0, t:t + patch, l:l + patch] = True
    return out, truth


def pixel_auroc(maps: np.ndarray, truth: np.ndarray) -> float:
    """AUROC of per-pixel values (channels averaged) against the truth masks."""
    return metrics.auroc(maps.mean(axis=1).ravel(), truth[:, 0].ravel().astype(np.int64))


def localisation(client: Any, x: np.ndarray, foreign: np.ndarray, x_train: np.ndarray | None, *,
                 seed: int = 0, k: int = 16) -> dict[str, Any]:
    """Pixel AUROC of ``client.anomaly_map`` ("mse", and "nll" for VAEs) and of the mean-image baseline."""
    bad, truth = pasted_patches(x, foreign, seed=seed)
    out: dict[str, Any] = {"n": len(x), "patch": PATCH, "positive_share": float(truth.mean()),
                           "mse": {"pixel_auroc": pixel_auroc(client.anomaly_map(bad), truth)}}
    if client.card.is_vae:
        out["nll"] = {"pixel_auroc": pixel_auroc(client.anomaly_map(bad, method="nll", k=k, seed=seed), truth), "k": k}
    if x_train is not None:
        mean = x_train.mean(axis=0, keepdims=True)
        out["mean_image"] = {"pixel_auroc": pixel_auroc((bad - mean) ** 2, truth)}
    return out
