"""Encoder/decoder network bodies: a symmetric MLP ("stacked") and a strided conv net.

``build_networks(arch, input_shape, latent_dim, n_heads, hparams)`` returns an
``(Encoder, Decoder)`` pair of independent ``nn.Module``s. The encoder maps
``x: (N, *input_shape)`` to one ``(N, latent_dim)`` tensor per head (one head ``z``
for deterministic families; two, ``mu`` and ``logvar``, for the VAE). The decoder
maps ``z`` to ``x_hat`` in [0, 1]; ``decoder.logits(z)`` gives the pre-sigmoid values
that the losses use for numerical stability. Neither module draws random numbers.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from ..errors import ConfigError

DEFAULT_HIDDEN = (512,)
DEFAULT_CHANNELS = (32, 64)
DEFAULT_CONV_DENSE = 256


def _activation() -> nn.Module:
    return nn.SiLU()


class Encoder(nn.Module):
    """Body followed by one linear head per output (``z``, or ``mu`` and ``logvar``)."""

    def __init__(self, body: nn.Module, features: int, latent_dim: int, n_heads: int):
        super().__init__()
        self.body = body
        self.heads = nn.ModuleList(nn.Linear(features, latent_dim) for _ in range(n_heads))

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        h = self.body(x)
        outs = tuple(head(h) for head in self.heads)
        return outs[0] if len(outs) == 1 else outs


class Decoder(nn.Module):
    """``forward(z)`` is the likelihood mean in [0, 1]; ``logits(z)`` the value before sigmoid."""

    def __init__(self, body: nn.Module, output_shape: Sequence[int]):
        super().__init__()
        self.body = body
        self.output_shape = tuple(output_shape)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z).reshape(z.shape[0], *self.output_shape)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(z))


def _mlp(sizes: Sequence[int], last_activation: bool) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if last_activation or i < len(sizes) - 2:
            layers.append(_activation())
    return layers


def _build_mlp(input_shape: Sequence[int], latent_dim: int, n_heads: int, hparams: dict[str, Any]):
    hidden = tuple(int(h) for h in hparams.get("hidden", DEFAULT_HIDDEN))
    if not hidden or any(h < 1 for h in hidden):
        raise ConfigError(f"hidden sizes must be positive integers, got {hidden}")
    d = math.prod(input_shape)
    body = nn.Sequential(nn.Flatten(), *_mlp((d, *hidden), last_activation=True))
    encoder = Encoder(body, hidden[-1], latent_dim, n_heads)
    decoder = Decoder(nn.Sequential(*_mlp((latent_dim, *reversed(hidden), d), last_activation=False)), input_shape)
    return encoder, decoder


def _build_conv(input_shape: Sequence[int], latent_dim: int, n_heads: int, hparams: dict[str, Any]):
    if len(input_shape) != 3:
        raise ConfigError(f"arch 'conv' needs image input (C, H, W), got input shape {tuple(input_shape)}; use arch 'mlp'")
    channels = tuple(int(c) for c in hparams.get("channels", DEFAULT_CHANNELS))
    dense = int(hparams.get("dense", DEFAULT_CONV_DENSE))
    c, h, w = input_shape
    stride = 2 ** len(channels)
    if h % stride or w % stride:
        raise ConfigError(f"arch 'conv' with {len(channels)} stride-2 layers needs H and W divisible by {stride}, got {h}x{w}")
    hh, ww = h // stride, w // stride
    flat = channels[-1] * hh * ww

    enc: list[nn.Module] = []
    for a, b in zip((c, *channels[:-1]), channels):
        enc += [nn.Conv2d(a, b, 4, stride=2, padding=1), _activation()]
    enc += [nn.Flatten(), nn.Linear(flat, dense), _activation()]
    encoder = Encoder(nn.Sequential(*enc), dense, latent_dim, n_heads)

    dec: list[nn.Module] = [nn.Linear(latent_dim, dense), _activation(), nn.Linear(dense, flat), _activation(),
                            nn.Unflatten(1, (channels[-1], hh, ww))]
    rev = tuple(reversed(channels))
    for i, (a, b) in enumerate(zip(rev, (*rev[1:], c))):
        dec.append(nn.ConvTranspose2d(a, b, 4, stride=2, padding=1))
        if i < len(rev) - 1:
            dec.append(_activation())
    decoder = Decoder(nn.Sequential(*dec), input_shape)
    return encoder, decoder


ARCHITECTURES = {"mlp": _build_mlp, "conv": _build_conv}
# hyper-parameters each architecture reads, with their defaults (the rest belong to the family)
ARCH_DEFAULTS: dict[str, dict[str, Any]] = {"mlp": {"hidden": list(DEFAULT_HIDDEN)},
                 "conv": {"channels": list(DEFAULT_CHANNELS), "dense": DEFAULT_CONV_DENSE}}
ARCH_HPARAMS = {arch: tuple(d) for arch, d in ARCH_DEFAULTS.items()}


def build_networks(arch: str, input_shape: Sequence[int], latent_dim: int, n_heads: int,
                   hparams: dict[str, Any]) -> tuple[Encoder, Decoder]:
    """Build an (encoder, decoder) pair. Raises ConfigError on an unknown arch or bad sizes."""
    if arch not in ARCHITECTURES:
        raise ConfigError(f"unknown arch {arch!r}; expected one of {', '.join(ARCHITECTURES)}")
    if int(latent_dim) < 1:
        raise ConfigError(f"latent size must be >= 1, got {latent_dim}")
    return ARCHITECTURES[arch](tuple(input_shape), int(latent_dim), n_heads, hparams)
