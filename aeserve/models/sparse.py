"""Sparse autoencoder: L1 penalty ``lam * |z|_1`` on the code; may be overcomplete."""

from __future__ import annotations

import torch

from .base import Autoencoder, register


@register
class SparseAE(Autoencoder):
    family = "sparse"
    defaults = {"lam": 0.05}

    def code(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z = self.encoder(x)
        return z, {"l1": float(self.hparams["lam"]) * z.abs().sum(1)}
