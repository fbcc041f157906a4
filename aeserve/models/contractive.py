"""Contractive autoencoder: penalty ``lam * ||J_f(x)||_F^2``, J the encoder's Jacobian at x."""

from __future__ import annotations

import torch
from torch import nn

from .base import Autoencoder, register


def jacobian_frobenius_sq(encoder: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample squared Frobenius norm of d encoder(x) / d x, shape ``(N,)``, and ``z = encoder(x)``.

    ``frob, z = jacobian_frobenius_sq(model.encoder, x)``. Exact: one backward pass per
    latent dimension. Differentiable (``create_graph``) when called with grad enabled, so
    it can be trained through; under ``torch.no_grad()`` it still works and returns
    detached tensors (validation loss). Samples must not interact inside ``encoder``
    (no batch norm), which holds for every architecture here.
    """
    outer_grad = torch.is_grad_enabled()
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        z = encoder(x)
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for i in range(z.shape[1]):
            (g,) = torch.autograd.grad(z[:, i].sum(), x, create_graph=outer_grad, retain_graph=True)
            total = total + g.flatten(1).pow(2).sum(1)
    if not outer_grad:
        return total.detach(), z.detach()
    return total, z


@register
class ContractiveAE(Autoencoder):
    family = "contractive"
    defaults = {"lam": 0.01}

    def code(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if not self.training:  # inference: the penalty is a training-time regulariser only
            return self.encoder(x), {}
        frob, z = jacobian_frobenius_sq(self.encoder, x)
        return z, {"contractive": float(self.hparams["lam"]) * frob}
