"""Inpainting quality inside the hole, against OpenCV's Telea inpainting and a PCA projection.

    from aeserve.eval.inpainting import inpainting, PROTOCOLS
    inpainting(client, x_test, x_train, seed=0)
    # {"center": {"model": {"psnr_hole": ..}, "telea": {..}, "pca": {..}, "missing_share": 0.25}, "patches": {..}}

Protocols: ``center`` hides the centred box of 25% of the area (14x14 of 28x28);
``patches`` hides 3 random 8x8 squares per image (seeded, may overlap). PSNR is over the
hidden pixels only, pooled over the images (``10 log10(1 / MSE_hole)``). Baselines:
``telea`` (``cv2.inpaint``, INPAINT_TELEA, radius 3, on 8-bit images) and ``pca``: the
top-``k`` principal subspace of the training images (k = the model's latent size,
at most D - 1) fitted
to the known pixels by ridge-regularised least squares, read off in the hole.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import metrics, restoration
from ..errors import ConfigError
from ..images import to_uint8
from .reconstruction import PCABaseline

PROTOCOLS = ("center", "patches")
TELEA_RADIUS = 3
RIDGE = 1e-3


def masks(protocol: str, n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """(n, 1, h, w) bool masks of a protocol (True = hidden)."""
    if protocol == "center":
        return np.broadcast_to(restoration.center_box_mask(h, w), (n, 1, h, w)).copy()
    if protocol == "patches":
        return restoration.patch_masks(np.random.default_rng(seed), n, h, w, count=3)
    raise ConfigError(f"unknown inpainting protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")


def telea(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """OpenCV Telea inpainting of each (C, H, W) image; float32 in [0, 1]."""
    try:
        import cv2
    except ImportError:
        raise ConfigError("the Telea baseline needs OpenCV: pip install 'aeserve[eval]'") from None
    out = np.empty_like(x)
    for i in range(len(x)):
        img = np.moveaxis(to_uint8(x[i]), 0, -1)
        filled = cv2.inpaint(np.ascontiguousarray(img), m[i, 0].astype(np.uint8), TELEA_RADIUS, cv2.INPAINT_TELEA)
        out[i] = np.moveaxis(filled.reshape(img.shape), -1, 0).astype(np.float32) / 255.0
    return out


def pca_fill(pca: PCABaseline, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Fit the PCA coefficients to each image's known pixels (ridge ``RIDGE``); fill the hole."""
    flat = x.reshape(len(x), -1)
    hole = np.broadcast_to(m, x.shape).reshape(len(x), -1)
    u = pca.components                                     # (k, D)
    out = flat.copy()
    for i in range(len(x)):
        known = ~hole[i]
        uk = u[:, known]
        c = np.linalg.solve(uk @ uk.T + RIDGE * np.eye(len(u), dtype=np.float32), uk @ (flat[i, known] - pca.mean[known]))
        full = pca.mean + c @ u
        out[i, hole[i]] = np.clip(full[hole[i]], 0.0, 1.0)
    return out.reshape(x.shape)


def psnr_hole(x: np.ndarray, filled: np.ndarray, m: np.ndarray) -> float:
    """PSNR over the hidden pixels of all images together."""
    hole = np.broadcast_to(m, x.shape)
    return float(metrics.psnr_from_mse(float(np.mean((x[hole] - filled[hole]) ** 2))))


def inpainting(client: Any, x: np.ndarray, x_train: np.ndarray | None, *, seed: int = 0,
               pca_k: int | None = None) -> dict[str, Any]:
    """PSNR in the hole of ``client.inpaint`` vs Telea vs PCA (see module doc), per protocol."""
    n, _, h, w = x.shape
    pca = None
    if x_train is not None:
        k = min(pca_k or client.card.latent_dim, min(len(x_train), x_train[0].size) - 1)
        pca = PCABaseline.fit(x_train, k, seed=seed)
    out: dict[str, Any] = {}
    for protocol in PROTOCOLS:
        m = masks(protocol, n, h, w, seed)
        row: dict[str, Any] = {"missing_share": float(m.mean()), "n": n,
                               "model": {"psnr_hole": psnr_hole(x, client.inpaint(x, m), m)},
                               "telea": {"psnr_hole": psnr_hole(x, telea(x, m), m)}}
        if pca is not None:
            row["pca"] = {"psnr_hole": psnr_hole(x, pca_fill(pca, x, m), m), "k": pca.k}
        best = max(v["psnr_hole"] for k, v in row.items() if k in ("telea", "pca"))
        row["model_minus_best_baseline_db"] = row["model"]["psnr_hole"] - best
        out[protocol] = row
    return out
