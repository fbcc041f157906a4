"""Anomaly scoring operations of ``aeserve.Client``: anomaly_score, calibrate, is_anomaly."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import noise
from ..checks import check_int
from ..errors import CardError, ConfigError
from .base import ClientBase

SCORE_METHODS = ("mse", "elbo")


class ScoringOps(ClientBase):
    """Per-image anomaly scores and thresholds."""

    def anomaly_score(self, x: Any, *, method: str = "mse", k: int = 16, seed: int = 0) -> np.ndarray:
        """Per-image anomaly score ``(N,)`` float64, higher = more anomalous.

        "mse": mean squared reconstruction error (any family; the card's calibration uses it).
        "elbo" (VAE): negative ELBO in nats, ``k`` posterior samples per image, the k
        decodes batched together; sample j of item i depends only on (seed, i, j).
        SizeLimitError (before allocating) when the k samples in flight would take more
        than the Client's ``limits``.
        """
        from .. import anomaly

        if method not in SCORE_METHODS:
            raise ConfigError(f"unknown anomaly method {method!r}; expected one of {', '.join(SCORE_METHODS)}")
        x = self._images(x)
        if method == "mse":
            def mse(s: int, e: int) -> np.ndarray:
                xb = x[s:e]
                return anomaly.mse_score(xb, self._conn.runtime.decode(self.model, self._latent(xb, "mean", 0, s)))

            return self._map(len(x), mse, desc="score")[0]
        if not self.card.is_vae:
            raise ConfigError(f"method 'elbo' needs a VAE; model {self.model!r} is family {self.card.family!r}: "
                              "use method='mse'")
        check_int(k, "k", minimum=1, detail=" (posterior samples per image)")
        noise.check_seed(seed)
        k, dim, shape = int(k), self.card.latent_dim, self.card.input_shape
        sigma = self.card.sigma
        per_chunk = max(1, self._info.max_batch_size // k)
        at_once = min(len(x), per_chunk) * min(self._conn.batcher.max_in_flight, -(-len(x) // per_chunk))
        self._limits.check_bytes(at_once * k * (2 * self.image_bytes + 12 * dim),
                                 f"anomaly_score(method='elbo', k={k}) on {len(x)} images")

        def elbo(s: int, e: int) -> np.ndarray:
            xb, m = x[s:e], e - s
            out = self._conn.runtime.encode(self.model, xb)
            mu, logvar = out["mu"], out["logvar"]
            z = noise.posterior_samples(mu, logvar, seed, k, start=s).reshape(k * m, dim)
            x_hats = self._decode_all(z).reshape(k, m, *shape)
            return anomaly.neg_elbo(xb, x_hats, mu, logvar, self.card.likelihood, sigma=sigma)

        return self._map(len(x), elbo, size=max(1, self._info.max_batch_size // k), desc="score")[0]

    def calibrate(self, x_normal: Any, *, quantile: float = 0.99, method: str = "mse") -> float:
        """Set (and return) the threshold = ``quantile`` of the scores of normal images."""
        from .. import anomaly

        thr = float(anomaly.threshold_from_scores(self.anomaly_score(x_normal, method=method), quantile))
        self._threshold = (method, thr)
        return thr

    def is_anomaly(self, x: Any) -> np.ndarray:
        """Boolean ``(N,)``: score above the calibrated threshold, else the card's
        ``anomaly.threshold`` (with the card's ``anomaly.method``). CardError if neither exists."""
        if self._threshold is not None:
            method, thr = self._threshold
        else:
            card_thr = self.card.get_float("anomaly.threshold")
            if card_thr is None:
                raise CardError(f"model {self.model!r} has no anomaly.threshold in its card; "
                                "call calibrate(x_normal) first")
            method, thr = self.card.anomaly.get("method", "mse"), card_thr
        return self.anomaly_score(x, method=method) > thr
