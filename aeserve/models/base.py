"""The autoencoder base class and the family registry.

A family is one small module in this package with one ``@register``-ed subclass of
``Autoencoder``; it states its name, its hyper-parameter defaults, and overrides
``corrupt`` (what the encoder sees in training), ``code`` (the latent used in
training) or ``penalty`` (the regulariser). Everything else (building the
networks, the reconstruction loss, checkpointing, export) is shared.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..card import DEFAULT_SIGMA, ModelCard
from ..errors import ConfigError
from .arch import ARCH_DEFAULTS, build_networks

REGISTRY: dict[str, type["Autoencoder"]] = {}


def register(cls: type["Autoencoder"]) -> type["Autoencoder"]:
    """Class decorator: make a family available by its ``family`` name."""
    REGISTRY[cls.family] = cls
    return cls


class Autoencoder(nn.Module):
    """An encoder/decoder pair plus its training objective.

    ``model.encoder`` and ``model.decoder`` are independent modules (exported as
    two ONNX graphs). ``model.loss(x)`` returns ``(loss, parts)`` where ``loss`` is
    the batch mean of the per-sample objective and ``parts`` holds its named
    components (batch means, detached) for logging.
    """

    family: ClassVar[str] = ""
    n_heads: ClassVar[int] = 1
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, card: ModelCard):
        super().__init__()
        # every setting the networks and loss read is recorded in the card, so a checkpoint
        # rebuilds the same model even if a default changes later
        likelihood_defaults = {"sigma": DEFAULT_SIGMA} if card.likelihood == "gaussian" else {}
        self.hparams = {**ARCH_DEFAULTS.get(card.arch, {}), **likelihood_defaults, **self.defaults, **card.hparams}
        sigma = self.hparams.get("sigma")  # set for gaussian; may be passed (unused) for bernoulli
        if sigma is not None and float(sigma) <= 0:
            raise ConfigError(f"sigma must be > 0, got {sigma}")
        self.card = card.with_extra(hparams=self.hparams)
        self.encoder, self.decoder = build_networks(card.arch, card.input_shape, card.latent_dim,
                                                    self.n_heads, self.hparams)

    # ---- overridable pieces ----------------------------------------------------------
    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """What the encoder sees during training (the DAE corrupts; others don't)."""
        return x

    def code(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Latent used to reconstruct ``x`` plus per-sample penalty terms."""
        return self.encoder(x), {}

    # ---- shared ----------------------------------------------------------------------
    def recon_nll(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-sample negative log-likelihood (nats, up to a constant for gaussian)."""
        if self.card.likelihood == "bernoulli":
            nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        else:
            sigma = float(self.hparams["sigma"])
            nll = 0.5 * ((torch.sigmoid(logits) - x) / sigma) ** 2
        return nll.flatten(1).sum(1)

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        z, penalties = self.code(self.corrupt(x))
        recon = self.recon_nll(self.decoder.logits(z), x)
        total = recon + sum(penalties.values(), torch.zeros_like(recon))
        parts = {"recon": recon.mean().item(), **{k: v.mean().item() for k, v in penalties.items()}}
        return total.mean(), parts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstruction in eval mode (VAE: decode the posterior mean)."""
        z = self.encoder(x)
        return self.decoder(z[0] if isinstance(z, tuple) else z)
