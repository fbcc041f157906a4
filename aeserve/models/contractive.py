"""Contractive autoencoder: penalty ``lam * ||J_f(x)||_F^2``, J the encoder's Jacobian at x."""

from __future__ import annotations

import torch
from torch import nn

from .base import Autoencoder, register


def jacobian_frobenius_sq(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-sample squared Frobenius norm of d encoder(x) / d x, shape ``(N,)``.

    Exact: one backward pass per latent dimension, differentiable (``create_graph``)
    so it can be trained through. Samples must not interact inside ``encoder``
    (no batch norm), which holds for every architecture here.
    """
    x = x.detach().requires_grad_(True)
    z = encoder(x)
    total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    for i in range(z.shape[1]):
        (g,) = torch.autograd.grad(z[:, i].sum(), x, create_graph=True)
        total = total + g.flatten(1).pow(2).sum(1)
    return total, z


@register
class ContractiveAE(Autoencoder):
    family = "contractive"
    defaults = {"lam": 0.01}

    def code(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if not torch.is_grad_enabled():
            return self.encoder(x), {}
        frob, z = jacobian_frobenius_sq(self.encoder, x)
        return z, {"contractive": float(self.hparams["lam"]) * frob}
