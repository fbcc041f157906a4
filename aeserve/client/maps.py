"""Per-pixel anomaly maps of ``aeserve.Client``: where in an image the model is surprised.

    c = aeserve.Client(model="mnist_vae")
    m = c.anomaly_map(x)                      # (N, C, H, W) squared reconstruction error
    m = c.anomaly_map(x, method="nll", k=16)  # VAE: expected per-pixel NLL in nats
    aeserve.plots.overlay_png(x, m, "overlay.png")   # heat map over the images
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import metrics, noise
from ..checks import check_int
from ..errors import ConfigError
from .base import ClientBase

MAP_METHODS = ("mse", "nll")


class MapOps(ClientBase):
    """Per-pixel error maps (the per-image score is their mean, see ``anomaly_score``)."""

    def anomaly_map(self, x: Any, *, method: str = "mse", k: int = 16, seed: int = 0) -> np.ndarray:
        """Per-pixel anomaly maps float32 (N, C, H, W), higher = more anomalous.

        "mse" (any family): ``(x - reconstruct(x))**2``; its per-image mean is
        ``anomaly_score(x, method="mse")``. "nll" (VAE): the expected per-pixel negative
        log-likelihood ``E_q(z|x)[-log p(x_ij | z)]`` in nats under the card's likelihood,
        estimated with ``k`` posterior samples per image (sample j of item i depends only
        on (seed, i, j)). ConfigError for an unknown method or "nll" on a non-VAE;
        InputError for bad images, k or seed.
        """
        if method not in MAP_METHODS:
            raise ConfigError(f"unknown anomaly map method {method!r}; expected one of {', '.join(MAP_METHODS)}")
        x = self._images(x)
        if method == "mse":
            return ((x - self.reconstruct(x)) ** 2).astype(np.float32)
        if not self.card.is_vae:
            raise ConfigError(f"method 'nll' needs a VAE; model {self.model!r} is family {self.card.family!r}: "
                              "use method='mse'")
        check_int(k, "k", minimum=1, detail=" (posterior samples per image)")
        noise.check_seed(seed)
        k = int(k)
        sigma = self.card.sigma

        def nll(s: int, e: int) -> np.ndarray:
            xb = x[s:e]
            x_hats = self._posterior_decodes(xb, seed, k, s)[0]
            lead = x_hats.ndim  # per element: nothing summed
            if self.card.likelihood == "bernoulli":
                ll = metrics.log_bernoulli(xb[None], x_hats, lead=lead)
            else:
                ll = metrics.log_gaussian(xb[None], x_hats, sigma, lead=lead)
            return (-ll.mean(axis=0)).astype(np.float32)

        return self._map(len(x), nll, size=max(1, self._info.max_batch_size // k), desc="anomaly map")[0]
