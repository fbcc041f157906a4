"""Restoration operations of ``aeserve.Client``: inpaint, upscale, colorize.

Each call needs a model trained for that restoration (its card's ``restore.task``; see
``aeserve.restoration``): the input is corrupted exactly as in training, passed through
the model, and the result returned at full resolution::

    c = aeserve.Client(model="mnist_inpaint")
    filled = c.inpaint(x, mask)                 # mask True/1 = missing; known pixels kept exactly
    big = c.with_model("mnist_sr4").upscale(x_low)   # (N, 1, 7, 7) -> (N, 1, 28, 28)
    rgb = c.with_model("my_colorizer").colorize(gray)   # (N, 1, H, W) -> (N, 3, H, W)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import restoration
from ..errors import ConfigError, InputError
from ..images import as_batch
from .base import ClientBase


class RestorationOps(ClientBase):
    """Fill masked pixels, raise resolution, add colour (one model per restoration)."""

    def _require(self, task: str) -> None:
        """ConfigError unless this model restores ``task``; the message names models that do."""
        if self.card.restores == task:
            return
        able = sorted(name for name, card in self.models().items() if card.restores == task)
        hint = f"models that do: {', '.join(able)}" if able else \
            f"no model here does; train one with `aeserve train --family dae --noise {_NOISE[task]}`"
        raise ConfigError(f"{task} needs a model trained for it; model {self.model!r} restores "
                          f"{self.card.restores or 'nothing'} ({hint})")

    def inpaint(self, x: Any, mask: Any) -> np.ndarray:
        """Fill the missing pixels of images ``x`` (N, C, H, W); known pixels come back exactly.

        ``mask``: True/1 where a pixel is missing, as (H, W) for every image, (N, H, W) or
        (N, 1, H, W); the values of ``x`` under the mask are ignored. Returns float32
        (N, C, H, W). ConfigError if the model is not an inpainting model; InputError for
        a mask of another shape, non-binary, or with no missing / no known pixel in an image.
        """
        self._require("inpaint")
        x = self._images(x)
        m = restoration.check_mask(mask, x.shape)
        fill = self.card.get_float("restore.fill", restoration.FILL)
        filled = self.reconstruct(restoration.apply_mask(x, m, fill))
        return np.where(m, filled, x).astype(np.float32, copy=False)

    @property
    def upscale_factors(self) -> tuple[int, ...]:
        """Factors this upscaling model accepts (card ``restore.factors``), e.g. (2, 4)."""
        return tuple(int(f) for f in self.card.get_json("restore.factors", []))

    def upscale(self, x_low: Any) -> np.ndarray:
        """Low-resolution images (N, C, H/f, W/f) -> (N, C, H, W), f one of ``upscale_factors``
        (read from the input's size). (N, H/f, W/f) is accepted for one channel.

        ConfigError if the model is not an upscaling model; InputError for a size that is
        not H/f x W/f for an accepted f (the message lists the accepted shapes)."""
        self._require("upscale")
        c, h, w = self.card.input_shape
        arr = np.asarray(x_low) if not isinstance(x_low, np.ndarray) else x_low
        shapes = {f: (c, h // f, w // f) for f in self.upscale_factors}
        for f, low in shapes.items():
            if arr.ndim >= 2 and tuple(arr.shape[-2:]) == low[1:]:
                small = as_batch(x_low, low, what=f"low-resolution images for model {self.model!r}")
                return self.reconstruct(restoration.upsample(small, f))
        accepted = ", ".join(f"(N, {', '.join(map(str, s))}) for x{f}" for f, s in shapes.items())
        raise InputError(f"low-resolution images have shape {np.shape(x_low)}; model {self.model!r} "
                         f"upscales {accepted}")

    def colorize(self, x_gray: Any) -> np.ndarray:
        """Greyscale images (N, 1, H, W) or (N, H, W) -> colour (N, C, H, W) float32.

        ConfigError if the model is not a colourisation model; InputError for colour input
        (convert with ``aeserve.restoration.to_gray``) or another size."""
        self._require("colorize")
        c, h, w = self.card.input_shape
        arr = np.asarray(x_gray)
        if arr.ndim == 4 and arr.shape[1] != 1:
            raise InputError(f"colorize takes greyscale images (N, 1, {h}, {w}); got {arr.shape[1]} channels "
                             f"(shape {arr.shape}): convert colour images with aeserve.restoration.to_gray")
        gray = as_batch(x_gray, (1, h, w), what=f"greyscale images for model {self.model!r}")
        return self.reconstruct(restoration.gray_input(gray, c))


_NOISE = {"inpaint": "inpaint", "upscale": "downsample --noise-level 4", "colorize": "grayscale"}
