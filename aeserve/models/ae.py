"""Undercomplete autoencoder: reconstruction loss only; the bottleneck is the regulariser."""

from .base import Autoencoder, register


@register
class AE(Autoencoder):
    family = "ae"
