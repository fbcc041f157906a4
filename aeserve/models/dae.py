"""Denoising autoencoder: the encoder sees a corrupted input, the loss targets the clean one.

``noise="gaussian"`` adds N(0, level^2) and clips to [0, 1]; ``noise="masking"`` zeroes
each input value with probability ``level``. The restoration corruptions of
``aeserve.restoration`` train a model that restores what a user asks for:
``noise="inpaint"`` (random boxes and 8x8 patches set to ``restoration.FILL``),
``noise="downsample"`` (box-averaged by 2, 4, ... up to ``level``, then upsampled
nearest; the model upscales), ``noise="grayscale"`` (colour images reduced to luma; the
model colourises). Such a model's card says what it restores (``restore.*`` keys).
"""

from __future__ import annotations

import numpy as np
import torch

from .. import restoration
from ..errors import ConfigError
from .base import Autoencoder, register

NOISES = ("gaussian", "masking", *restoration.CORRUPTIONS)


def corrupt(x: torch.Tensor, noise: str, level: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Corrupt ``x`` in [0, 1] with gaussian (std ``level``, clipped) or masking (drop prob ``level``) noise."""
    if noise == "gaussian":
        return (x + level * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)).clamp(0.0, 1.0)
    if noise == "masking":
        keep = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) >= level
        return x * keep
    if noise in restoration.CORRUPTIONS:
        seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
        out = restoration.corrupt(x.detach().cpu().numpy(), noise, level, np.random.default_rng(seed))
        return torch.from_numpy(out).to(x.device)
    raise ConfigError(f"unknown noise {noise!r}; expected one of {', '.join(NOISES)}")


@register
class DAE(Autoencoder):
    family = "dae"
    defaults = {"noise": "gaussian", "noise_level": 0.5}

    def __init__(self, card):
        super().__init__(card)
        if self.hparams["noise"] not in NOISES:
            raise ConfigError(f"unknown noise {self.hparams['noise']!r}; expected one of {', '.join(NOISES)}")
        noise, level = self.hparams["noise"], float(self.hparams["noise_level"])
        if noise in restoration.CORRUPTIONS:
            self.card = self.card.with_extra(**restoration.card_entries(noise, level, tuple(card.input_shape)))
        elif not 0.0 <= level <= (1.0 if noise == "masking" else 10.0):
            raise ConfigError(f"noise_level {level} out of range for {noise} noise")

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        return corrupt(x, self.hparams["noise"], float(self.hparams["noise_level"]))
