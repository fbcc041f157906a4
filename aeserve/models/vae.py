"""Variational autoencoder: Gaussian posterior, N(0, I) prior, closed-form KL with weight beta.

The encoder returns ``(mu, logvar)``; the reparameterisation ``z = mu + exp(logvar/2) * eps``
happens here in training only, never inside the encoder or decoder modules.
"""

from __future__ import annotations

import torch

from .base import Autoencoder, register


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, diag(exp(logvar))) || N(0, I) ) per sample, shape ``(N,)``."""
    return 0.5 * (logvar.exp() + mu.pow(2) - 1.0 - logvar).sum(1)


@register
class VAE(Autoencoder):
    family = "vae"
    n_heads = 2
    defaults = {"beta": 1.0}

    def code(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        mu, logvar = self.encoder(x)
        kl = float(self.hparams["beta"]) * kl_to_standard_normal(mu, logvar)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu) if self.training else mu
        return z, {"kl": kl}
