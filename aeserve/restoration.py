"""Image corruptions a restoration model undoes, and the checks on what a user hands in.

One definition, used by training (``aeserve.models.dae``), by the client (``inpaint``,
``upscale``, ``colorize``) and by the evaluation, so what a model saw in training is
exactly what it sees when served::

    from aeserve import restoration as r
    low = r.downsample(x, 4)                   # (N, C, H/4, W/4) box average
    x_in = r.upsample(low, 4)                  # (N, C, H, W) nearest: what the encoder sees
    mask = r.center_box_mask(28, 28)           # (28, 28) bool, True = missing (25% of the area)
    x_in = r.apply_mask(x, mask)               # missing pixels set to FILL
    gray = r.to_gray(rgb)                      # (N, 1, H, W) luma (ITU-R BT.601)

Masks are boolean with True where a pixel is missing (to be filled). No torch here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ConfigError, InputError

#: corruptions a restoration model is trained on (``noise`` hyper-parameter of family dae)
CORRUPTIONS = ("inpaint", "downsample", "grayscale")
#: what a model restores (card key ``restore.task``), per corruption; plain DAEs denoise
TASKS = {"inpaint": "inpaint", "downsample": "upscale", "grayscale": "colorize"}
FILL = 0.5                         # value of a missing pixel in the encoder's input
LUMA = (0.299, 0.587, 0.114)       # ITU-R BT.601 weights, as Pillow's convert("L")
PATCH = 8                          # side of the random square patches


def factors_up_to(level: float) -> tuple[int, ...]:
    """Downsampling factors a ``downsample`` model with ``noise_level`` ``level`` is trained on:
    2, 4, ... up to ``level`` (a power of two >= 2). ConfigError otherwise."""
    f = int(level)
    if f != level or f < 2 or f & (f - 1):
        raise ConfigError(f"noise_level for downsample noise is the largest factor, a power of two >= 2 "
                          f"(2, 4, 8...), got {level}")
    return tuple(2 ** k for k in range(1, f.bit_length()))


def check_factor(factor: int, shape: tuple[int, ...]) -> int:
    """``factor`` if it divides H and W of the (C, H, W) ``shape``; ConfigError otherwise."""
    if shape[-1] % factor or shape[-2] % factor:
        raise ConfigError(f"factor {factor} does not divide the image size {shape[-2]}x{shape[-1]}")
    return factor


def downsample(x: np.ndarray, factor: int) -> np.ndarray:
    """Box average over ``factor`` x ``factor`` blocks: (N, C, H, W) -> (N, C, H/f, W/f)."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // factor, factor, w // factor, factor).mean(axis=(3, 5), dtype=np.float32)


def upsample(x_low: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upsampling (each pixel repeated): (N, C, h, w) -> (N, C, h*f, w*f)."""
    return np.repeat(np.repeat(x_low, factor, axis=2), factor, axis=3).astype(np.float32, copy=False)


def to_gray(x: np.ndarray) -> np.ndarray:
    """Luma of RGB images: (N, 3, H, W) -> (N, 1, H, W) float32."""
    w = np.asarray(LUMA, np.float32).reshape(1, 3, 1, 1)
    return (x * w).sum(axis=1, keepdims=True, dtype=np.float32)


def gray_input(gray: np.ndarray, channels: int) -> np.ndarray:
    """A greyscale batch (N, 1, H, W) as the encoder's ``channels``-channel input (copied per channel)."""
    return np.repeat(gray, channels, axis=1).astype(np.float32, copy=False)


def apply_mask(x: np.ndarray, mask: np.ndarray, fill: float = FILL) -> np.ndarray:
    """``x`` with missing pixels (``mask`` True, broadcast over channels) set to ``fill``."""
    return np.where(mask, np.float32(fill), x).astype(np.float32, copy=False)


# ---- masks ------------------------------------------------------------------------------
def box_mask(h: int, w: int, top: int, left: int, height: int, width: int) -> np.ndarray:
    """(h, w) bool mask, True inside the box (clipped to the image)."""
    m = np.zeros((h, w), bool)
    m[max(0, top):max(0, top + height), max(0, left):max(0, left + width)] = True
    return m


def center_box_mask(h: int, w: int, area: float = 0.25) -> np.ndarray:
    """(h, w) bool mask: a centred box covering ``area`` of the image (25%: 14x14 of 28x28)."""
    bh, bw = int(round(h * area ** 0.5)), int(round(w * area ** 0.5))
    return box_mask(h, w, (h - bh) // 2, (w - bw) // 2, bh, bw)


def patch_masks(rng: np.random.Generator, n: int, h: int, w: int, count: int = 3,
                patch: int = PATCH) -> np.ndarray:
    """(n, 1, h, w) bool masks of ``count`` random ``patch`` x ``patch`` squares each (may overlap)."""
    out = np.zeros((n, 1, h, w), bool)
    tops = rng.integers(0, h - patch + 1, (n, count))
    lefts = rng.integers(0, w - patch + 1, (n, count))
    for i in range(n):
        for t, l in zip(tops[i], lefts[i]):
            out[i, 0, t:t + patch, l:l + patch] = True
    return out


def training_masks(rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
    """(n, 1, h, w) masks an inpainting model trains on: half random boxes (sides 25-60% of
    the image, anywhere), half 1-4 random 8x8 patches."""
    out = np.zeros((n, 1, h, w), bool)
    boxes = rng.random(n) < 0.5
    for i in range(n):
        if boxes[i]:
            bh = int(rng.integers(h // 4, int(h * 0.6) + 1))
            bw = int(rng.integers(w // 4, int(w * 0.6) + 1))
            out[i, 0] = box_mask(h, w, int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1)), bh, bw)
        else:
            out[i] = patch_masks(rng, 1, h, w, count=int(rng.integers(1, 5)))[0]
    return out


def corrupt(x: np.ndarray, corruption: str, level: float, rng: np.random.Generator) -> np.ndarray:
    """What a restoration model's encoder sees in training, for a batch ``x`` (N, C, H, W)."""
    if corruption == "inpaint":
        return apply_mask(x, training_masks(rng, x.shape[0], x.shape[2], x.shape[3]))
    if corruption == "downsample":
        factors = factors_up_to(level)
        pick = rng.integers(0, len(factors), x.shape[0])
        out = np.empty_like(x)
        for k, f in enumerate(factors):
            sel = pick == k
            if sel.any():
                out[sel] = upsample(downsample(x[sel], f), f)
        return out
    if corruption == "grayscale":
        return gray_input(to_gray(x), x.shape[1])
    raise ConfigError(f"unknown corruption {corruption!r}; expected one of {', '.join(CORRUPTIONS)}")


def card_entries(corruption: str, level: float, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """Card keys (``restore.*``) that say what a model trained on ``corruption`` restores."""
    entries: dict[str, Any] = {"restore.task": TASKS[corruption]}
    if corruption == "inpaint":
        entries["restore.fill"] = FILL
    elif corruption == "downsample":
        factors = factors_up_to(level)
        for f in factors:
            check_factor(f, input_shape)
        entries["restore.factors"] = list(factors)
        entries["restore.low_shapes"] = [[input_shape[0], input_shape[1] // f, input_shape[2] // f] for f in factors]
    elif corruption == "grayscale" and input_shape[0] != 3:
        raise ConfigError(f"grayscale (colourisation) needs colour images (3, H, W), got input shape {input_shape}")
    return entries


# ---- user input checks ------------------------------------------------------------------
def check_mask(mask: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A user's mask for a batch of ``shape`` (N, C, H, W) as bool (N, 1, H, W), True = missing.

    Accepts (H, W) (one mask for every image), (N, H, W), (N, 1, H, W) or (1, 1, H, W);
    bool, or numbers that are all 0 or 1 (uint8 0/255 too). InputError for another shape,
    other values, or an image with no missing or no known pixel.
    """
    n, _, h, w = shape
    m = np.asarray(mask)
    if m.dtype == object or not (m.dtype == bool or np.issubdtype(m.dtype, np.number)):
        raise InputError(f"mask must be a boolean or 0/1 array, got dtype {m.dtype}")
    if m.ndim == 2:
        m = m[None, None]
    elif m.ndim == 3:
        m = m[:, None]
    if m.ndim != 4 or m.shape[1] != 1 or m.shape[2:] != (h, w) or m.shape[0] not in (1, n):
        raise InputError(f"mask has shape {np.shape(mask)}; expected ({h}, {w}), ({n}, {h}, {w}) or "
                         f"({n}, 1, {h}, {w}) for {n} image(s) of {h}x{w}")
    if m.dtype != bool:
        if not np.all(np.isfinite(m)):
            raise InputError("mask has NaN/Inf; expected 0 (known) or 1 (missing) values")
        values = np.unique(m)
        if values.size > 2 or not (set(values.tolist()) <= {0, 1} or set(values.tolist()) <= {0, 255}):
            raise InputError(f"mask is not binary (values {values[:5].tolist()}...); expected 0 (known) and "
                             "1 (missing), or 0/255")
        m = m != 0
    m = np.broadcast_to(m, (n, 1, h, w))
    missing = m.reshape(n, -1).sum(1)
    if np.any(missing == 0):
        raise InputError(f"mask marks no pixel missing in image {int(np.argmax(missing == 0))}; "
                         "nothing to inpaint (mask True/1 = missing)")
    if np.any(missing == h * w):
        raise InputError(f"mask marks every pixel missing in image {int(np.argmax(missing == h * w))}; "
                         "inpainting needs some known pixels (mask False/0 = known)")
    return np.ascontiguousarray(m)
