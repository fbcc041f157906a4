"""Heat maps over images (NumPy only): where an anomaly map is high, in colour.

    rgb = overlay(x, maps)                     # (N, 3, H, W) in [0, 1]
    aeserve.images.save_grid(rgb, "overlay.png")

Each map is scaled to [0, 1] by ``vmax`` (default: the 99th percentile over the whole
batch, so the images share one scale), coloured with a black-red-yellow-white ramp and
blended over the greyscale image in proportion to its value: low error shows the image,
high error shows the heat colour.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InputError

# (position, r, g, b): black -> red -> yellow -> white ("hot")
_RAMP = np.array([[0.0, 0.0, 0.0, 0.0], [0.4, 0.9, 0.0, 0.0], [0.75, 1.0, 0.85, 0.0], [1.0, 1.0, 1.0, 1.0]])


def colormap(v: np.ndarray) -> np.ndarray:
    """Values in [0, 1], any shape S -> RGB (3, *S) along the hot ramp."""
    v = np.clip(v, 0.0, 1.0)
    return np.stack([np.interp(v, _RAMP[:, 0], _RAMP[:, k]) for k in (1, 2, 3)]).astype(np.float32)


def overlay(x: Any, maps: Any, *, vmax: float | None = None) -> np.ndarray:
    """Images ``x`` (N, C, H, W) in [0, 1] with their maps (N, C', H, W) (channels averaged)
    as heat -> RGB float32 (N, 3, H, W). InputError if the shapes disagree or maps are not finite."""
    x = np.asarray(x, dtype=np.float32)
    m = np.asarray(maps, dtype=np.float32)
    if x.ndim != 4 or m.ndim != 4 or m.shape[0] != x.shape[0] or m.shape[2:] != x.shape[2:]:
        raise InputError(f"maps {m.shape} do not fit images {x.shape}; expected both (N, C, H, W), same N, H, W")
    if not np.all(np.isfinite(m)):
        raise InputError("maps contain NaN/Inf; expected finite values")
    heat = m.mean(axis=1)
    scale = float(np.percentile(heat, 99)) if vmax is None else float(vmax)
    v = np.clip(heat / scale, 0.0, 1.0) if scale > 0 else np.zeros_like(heat)
    gray = x.mean(axis=1)
    colour = np.moveaxis(colormap(v), 0, 1)                     # (N, 3, H, W)
    a = v[:, None]
    return ((1.0 - a) * gray[:, None] * 0.8 + a * colour).clip(0.0, 1.0).astype(np.float32)
