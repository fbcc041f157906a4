"""Super-resolution quality: PSNR and SSIM of ``client.upscale`` against bicubic upsampling.

    from aeserve.eval.superres import superresolution, ssim
    superresolution(client, x_test)      # {"x2": {"model": {"psnr", "ssim"}, "bicubic": {...}, ...}, "x4": {...}}

Low-resolution inputs are the box averages of the test images (``restoration.downsample``,
what the model was trained on); the bicubic baseline upsamples the same inputs with
Pillow (``Image.resize(..., BICUBIC)``, clipped to [0, 1]), the nearest baseline is what
the model's encoder sees. PSNR is pooled over the set; SSIM (Wang et al. 2004: Gaussian
window sigma 1.5, 11x11, K1 0.01, K2 0.03, data range 1) is the mean over images.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import metrics, restoration

_K1, _K2, _SIGMA, _WIN = 0.01, 0.03, 1.5, 11


def _window() -> np.ndarray:
    r = np.arange(_WIN) - _WIN // 2
    g = np.exp(-(r ** 2) / (2 * _SIGMA ** 2))
    return g / g.sum()


def _filter(a: np.ndarray) -> np.ndarray:
    """Separable Gaussian filter over the last two axes, 'valid' region only."""
    g = _window()
    h, w = a.shape[-2:]
    rows = sum(g[i] * a[..., i:h - _WIN + 1 + i, :] for i in range(_WIN))
    return sum(g[i] * rows[..., :, i:w - _WIN + 1 + i] for i in range(_WIN))


def ssim(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-image SSIM of (N, C, H, W) images in [0, 1] (channels averaged), shape (N,)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    c1, c2 = _K1 ** 2, _K2 ** 2
    mx, my = _filter(x), _filter(y)
    sxx = _filter(x * x) - mx * mx
    syy = _filter(y * y) - my * my
    sxy = _filter(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.reshape(len(x), -1).mean(axis=1)


def bicubic(x_low: np.ndarray, factor: int) -> np.ndarray:
    """Pillow bicubic upsampling of (N, C, h, w) float images, per channel, clipped to [0, 1]."""
    from PIL import Image

    n, c, h, w = x_low.shape
    out = np.empty((n, c, h * factor, w * factor), np.float32)
    for i in range(n):
        for k in range(c):
            out[i, k] = np.asarray(Image.fromarray(x_low[i, k].astype(np.float32), mode="F")
                                   .resize((w * factor, h * factor), Image.Resampling.BICUBIC))
    return np.clip(out, 0.0, 1.0)


def _score(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {"psnr": float(metrics.psnr_from_mse(float(np.mean((x - y) ** 2)))), "ssim": float(ssim(x, y).mean())}


def superresolution(client: Any, x: np.ndarray) -> dict[str, Any]:
    """Per factor the model accepts: model, bicubic and nearest PSNR/SSIM, and model - bicubic (dB)."""
    out: dict[str, Any] = {}
    for f in client.upscale_factors:
        low = restoration.downsample(x, f)
        row: dict[str, Any] = {"low_shape": list(low.shape[1:]), "n": len(x), "model": _score(x, client.upscale(low)),
               "bicubic": _score(x, bicubic(low, f)), "nearest": _score(x, restoration.upsample(low, f))}
        row["model_minus_bicubic_db"] = row["model"]["psnr"] - row["bicubic"]["psnr"]
        out[f"x{f}"] = row
    return out
