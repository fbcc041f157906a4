"""Anomaly scoring operations of ``aeserve.Client``: anomaly_score, calibrate, is_anomaly."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import noise
from ..checks import check_int
from ..errors import CardError, ConfigError, PriorMissingError
from ..prior import CALIBRATION_KEY
from .base import ClientBase

SCORE_METHODS = ("mse", "elbo", "density", "combined")


class ScoringOps(ClientBase):
    """Per-image anomaly scores and thresholds."""

    def anomaly_score(self, x: Any, *, method: str = "mse", k: int = 16, seed: int = 0) -> np.ndarray:
        """Per-image anomaly score ``(N,)`` float64, higher = more anomalous.

        "mse": mean squared reconstruction error (any family; the card's calibration uses it).
        "elbo" (VAE): negative ELBO in nats, ``k`` posterior samples per image, the k
        decodes batched together; sample j of item i depends only on (seed, i, j).
        "density": negative log-density (nats) of the code (VAE: posterior mean) under the
        fitted prior in the card. "combined": the sum of the standardised negative
        log-density and log reconstruction error, each standardised with the mean and
        standard deviation measured on held-out training images when the prior was fitted
        (``aeserve.prior.calibration``), so both terms weigh alike.
        Raises ConfigError (unknown method, elbo on a non-VAE), PriorMissingError (density /
        combined without a fitted prior), InputError (bad images or k), CardError,
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
        if method in ("density", "combined"):
            return self._density_score(x, method)
        if not self.card.is_vae:
            raise ConfigError(f"method 'elbo' needs a VAE; model {self.model!r} is family {self.card.family!r}: "
                              "use method='mse'")
        check_int(k, "k", minimum=1, detail=" (posterior samples per image)")
        noise.check_seed(seed)
        k, dim = int(k), self.card.latent_dim
        sigma = self.card.sigma
        per_chunk = max(1, self._info.max_batch_size // k)
        at_once = min(len(x), per_chunk) * min(self._conn.batcher.max_in_flight, -(-len(x) // per_chunk))
        self._limits.check_bytes(at_once * k * (2 * self.image_bytes + 12 * dim),
                                 f"anomaly_score(method='elbo', k={k}) on {len(x)} images")

        def elbo(s: int, e: int) -> np.ndarray:
            x_hats, mu, logvar = self._posterior_decodes(x[s:e], seed, k, s)
            return anomaly.neg_elbo(x[s:e], x_hats, mu, logvar, self.card.likelihood, sigma=sigma)

        return self._map(len(x), elbo, size=max(1, self._info.max_batch_size // k), desc="score")[0]

    def _density_score(self, x: np.ndarray, method: str) -> np.ndarray:
        from .. import anomaly

        prior = self.prior  # type: ignore[attr-defined]  # GenerationOps, combined in Client
        calibration = self.card.get_json(CALIBRATION_KEY) if method == "combined" else None
        if prior is None or (method == "combined" and not _valid_calibration(calibration)):
            what = "a fitted prior" if prior is None else "a prior calibration (aeserve.prior.calibration)"
            raise PriorMissingError(f"method {method!r} needs {what} in the card of model {self.model!r}; fit one "
                                    f"with `aeserve fit-prior --model {self.model}`")

        def work(s: int, e: int) -> np.ndarray:
            xb = x[s:e]
            z = self._latent(xb, "mean", 0, s)
            nll = -prior.log_density(z)
            if calibration is None:
                return nll
            log_mse = np.log(np.maximum(anomaly.mse_score(xb, self._conn.runtime.decode(self.model, z)), 1e-12))
            (m1, s1), (m2, s2) = calibration["nll"], calibration["log_mse"]
            return (nll - m1) / s1 + (log_mse - m2) / s2

        return self._map(len(x), work, desc="score")[0]

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


def _valid_calibration(c: Any) -> bool:
    try:
        return all(len(c[k]) == 2 and np.all(np.isfinite(c[k])) and c[k][1] > 0 for k in ("nll", "log_mse"))
    except (TypeError, KeyError):
        return False
