"""The fitted latent prior: a Gaussian mixture over a model's codes, carried in its card.

    prior = LatentPrior.from_card(card)                       # None if the card has none
    z = prior.sample(seed=0, start=0, count=64)               # (64, dim) float32
    z3 = prior.sample(seed=0, start=0, count=8, label=3)      # only the components of class 3
    logp = prior.log_density(z)                               # (64,) float64, nats
    entries = prior.card_entries()                            # {"prior": json, "prior.sha256": hex}

The mixture has ``K`` components with weights ``w_k``, means ``mu_k`` and lower-triangular
covariance factors ``L_k`` (``Sigma_k = L_k L_k^T``, positive diagonal). For labelled data
every component belongs to one class (``labels[k]``); the class-conditional prior is the
mixture of that class's components, renormalised, and the unconditional prior is the whole
mixture (class frequency times within-class weight).

Sampling is counter-based like every random draw in aeserve: item ``i`` takes row ``i`` of
``aeserve.noise.standard_normal(seed, ., ., dim + 1)``; the first ``dim`` columns are the
Gaussian noise ``eps`` (the same noise the standard prior uses for that seed and item) and
column ``dim`` picks the component by comparing it with the normal quantiles of the
cumulative weights. So item ``i`` depends only on ``(seed, i)`` and the mixture:
``z_i = mu_c + T * L_c eps_i``, T the temperature.

With ``label=k`` the draw stays in class ``k``'s region of the mixture: item ``i`` reads a
row of width ``REGION_TRIES * (dim + 1)`` and takes candidate ``r`` (columns ``r*(dim+1) ..
r*(dim+1)+dim``, drawn from class ``k``'s components as above) for the first ``r`` whose
class posterior under the whole mixture, ``p(k | z) = pi_k p(z | k) / p(z)``, is at least
``REGION_POSTERIOR``; if none is, the candidate with the highest posterior. Candidate 0 is
the unrestricted draw (Philox columns depend only on their block), and item ``i`` still
depends only on ``(seed, i)``. This is the mixture's own Bayes classifier keeping samples
of ``k`` away from the overlap with other classes; the unconditional draw is unrestricted.

Card keys (see ``aeserve.card``): ``aeserve.prior`` is compact JSON ``{"kind": "gmm",
"version": 1, "dim": d, "k": K, "weights": [...], "labels": [...] | null, "means": b64,
"chol": b64}`` where ``means`` is base64 of float32 little-endian ``(K, d)`` and ``chol``
the row-major packed lower triangles of ``L_k`` (``K * d(d+1)/2`` float32);
``aeserve.prior.sha256`` is the SHA-256 of that exact string. ``aeserve.class_names`` is a
JSON list of names, one per label, where the data has names. ``aeserve.prior.calibration``
is JSON ``{"nll": [mean, std], "log_mse": [mean, std], "n": count}`` measured on held-out
training images, for the ``combined`` anomaly score.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Sequence

import numpy as np

from . import noise
from .errors import CardError, InputError

__all__ = ["LatentPrior", "PRIOR_KEY", "FINGERPRINT_KEY", "CLASS_NAMES_KEY", "CALIBRATION_KEY", "component_bytes",
           "REGION_POSTERIOR", "REGION_TRIES"]

PRIOR_KEY = "prior"
FINGERPRINT_KEY = "prior.sha256"
CLASS_NAMES_KEY = "class_names"
CALIBRATION_KEY = "prior.calibration"
KIND = "gmm"
VERSION = 1
_WEIGHT_TOL = 1e-6
REGION_POSTERIOR = 0.99  # label=k keeps a candidate the mixture gives class k with at least this posterior
REGION_TRIES = 8  # candidates per item for label=k (the best one if none qualifies)
_BLOCK_ELEMENTS = 1 << 18  # rows x components x dim per step of the density: bounds its one temporary (2 MB)


def component_bytes(dim: int) -> int:
    """Card bytes one full-covariance component costs (base64 float32 mean + factor, weight, label)."""
    floats = dim + dim * (dim + 1) // 2
    return 4 * floats * 4 // 3 + 30


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def _unb64(text: Any, count: int, what: str) -> np.ndarray:
    try:
        raw = base64.b64decode(str(text).encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise CardError(f"prior {what} is not base64 float32 data") from None
    if len(raw) != 4 * count:
        raise CardError(f"prior {what} holds {len(raw) // 4} floats, expected {count}")
    return np.frombuffer(raw, dtype="<f4").astype(np.float64)


@dataclass(frozen=True, eq=False)
class LatentPrior:
    """A validated Gaussian mixture: ``weights`` (K,), ``means`` (K, d), ``chol`` (K, d, d)
    lower-triangular factors, ``labels`` (K,) int class per component or None.

    Raises CardError (from the constructor) when a value is not finite, the weights are not
    positive or do not sum to 1, a factor is not lower-triangular with a positive diagonal
    (so ``L L^T`` would not be positive definite) or the shapes disagree."""

    weights: np.ndarray
    means: np.ndarray
    chol: np.ndarray
    labels: np.ndarray | None = None
    _samplers: dict[int | None, tuple[np.ndarray | None, np.ndarray]] = field(
        default_factory=dict, init=False, repr=False, compare=False)
    _whitening: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        w, m, c = (np.asarray(a, np.float64) for a in (self.weights, self.means, self.chol))
        if w.ndim != 1 or w.size == 0 or m.ndim != 2 or m.shape[0] != w.size or m.shape[1] < 1 \
                or c.shape != (w.size, m.shape[1], m.shape[1]):
            raise CardError(f"prior shapes disagree: weights {w.shape}, means {m.shape}, chol {c.shape}; "
                            "expected (K,), (K, d), (K, d, d)")
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(m)) and np.all(np.isfinite(c))):
            raise CardError("prior holds NaN or Inf; expected finite weights, means and factors")
        if np.any(w <= 0) or abs(w.sum() - 1.0) > _WEIGHT_TOL:
            raise CardError(f"prior weights must be positive and sum to 1, got sum {w.sum():.9g}, min {w.min():.3g}")
        diag = np.diagonal(c, axis1=1, axis2=2)
        if np.any(diag <= 0) or np.any(np.triu(c, 1) != 0):
            raise CardError("prior covariance factors must be lower-triangular with a positive diagonal "
                            "(a positive-definite covariance); this card's are not")
        labels = None
        if self.labels is not None:
            lab = np.asarray(self.labels)
            if lab.shape != w.shape or not np.issubdtype(lab.dtype, np.integer) or np.any(lab < 0):
                raise CardError(f"prior labels must be K={w.size} non-negative integers, got {lab.tolist()!r}")
            labels = lab.astype(np.int64)
        for name, value in (("weights", w), ("means", m), ("chol", c), ("labels", labels)):
            if value is not None:
                value.setflags(write=False)
            object.__setattr__(self, name, value)

    # ---- shape -------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    @property
    def n_components(self) -> int:
        return int(self.weights.size)

    @property
    def classes(self) -> tuple[int, ...]:
        """Class labels that have components (empty for an unlabelled prior)."""
        return () if self.labels is None else tuple(int(v) for v in np.unique(self.labels))

    # ---- card --------------------------------------------------------------------------
    def to_json(self) -> str:
        """The compact JSON stored under ``aeserve.prior``."""
        d = self.dim
        rows, cols = np.tril_indices(d)
        doc = {"kind": KIND, "version": VERSION, "dim": d, "k": self.n_components,
               "weights": [float(v) for v in self.weights],
               "labels": None if self.labels is None else [int(v) for v in self.labels],
               "means": _b64(self.means), "chol": _b64(self.chol[:, rows, cols])}
        return json.dumps(doc, separators=(",", ":"))

    def card_entries(self) -> dict[str, str]:
        """``{"prior": json, "prior.sha256": hex}`` for ``ModelCard.with_extra(**entries)``."""
        text = self.to_json()
        return {PRIOR_KEY: text, FINGERPRINT_KEY: hashlib.sha256(text.encode()).hexdigest()}

    @classmethod
    def from_json(cls, text: str) -> "LatentPrior":
        """Parse ``aeserve.prior``; CardError says what is malformed."""
        try:
            doc = json.loads(text)
        except (TypeError, json.JSONDecodeError):
            raise CardError("card key aeserve.prior is not JSON; expected the output of `aeserve fit-prior`") from None
        if not isinstance(doc, dict) or doc.get("kind") != KIND or doc.get("version") != VERSION:
            raise CardError(f"card key aeserve.prior is not a version-{VERSION} {KIND!r} prior; "
                            "re-fit it with `aeserve fit-prior`")
        try:
            d, k = int(doc["dim"]), int(doc["k"])
            weights = np.asarray(doc["weights"], np.float64)
            labels = doc.get("labels")
        except (KeyError, TypeError, ValueError) as e:
            raise CardError(f"card key aeserve.prior is missing or has a malformed field: {e}") from None
        if d < 1 or k < 1:
            raise CardError(f"prior dim and k must be >= 1, got {d} and {k}")
        means = _unb64(doc.get("means"), k * d, "means").reshape(k, d)
        packed = _unb64(doc.get("chol"), k * d * (d + 1) // 2, "chol").reshape(k, -1)
        chol = np.zeros((k, d, d))
        rows, cols = np.tril_indices(d)
        chol[:, rows, cols] = packed
        return cls(weights, means, chol, None if labels is None else np.asarray(labels))

    @classmethod
    def from_card(cls, card: Any) -> "LatentPrior | None":
        """The card's prior, checked against its fingerprint and the card's latent_dim; None if absent.

        Raises CardError for a fingerprint mismatch, a malformed or invalid prior, or a dim
        that is not the model's."""
        text = card.get(PRIOR_KEY)
        if text is None:
            return None
        want = card.get(FINGERPRINT_KEY)
        got = hashlib.sha256(text.encode()).hexdigest()
        if want != got:
            raise CardError(f"the fitted prior in this card fails its fingerprint (aeserve.prior.sha256 is "
                            f"{want!r}, the prior hashes to {got[:16]}...): it was modified after fitting; "
                            "re-fit it with `aeserve fit-prior`")
        prior = cls.from_json(text)
        if prior.dim != card.latent_dim:
            raise CardError(f"the fitted prior has dim {prior.dim}, the model's latent_dim is {card.latent_dim}")
        return prior

    # ---- labels ------------------------------------------------------------------------
    def resolve_label(self, label: Any, class_names: Sequence[str] | None = None) -> int:
        """A class index for ``label`` (an int, or a class name where the card has names).

        InputError when the prior is unlabelled or the label is not one it knows."""
        if self.labels is None:
            raise InputError("this model's prior has no classes (it was fitted without labels); "
                             "generate without label=")
        names = list(class_names or [])
        if isinstance(label, str):
            if label in names:
                return names.index(label)
            if label.strip().isdigit():
                label = int(label.strip())
            else:
                raise InputError(f"unknown class name {label!r}; expected one of {names or list(self.classes)}")
        if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)) \
                or int(label) not in self.classes:
            known = ", ".join(f"{c} ({names[c]})" if c < len(names) else str(c) for c in self.classes)
            raise InputError(f"unknown label {label!r}; this model's classes are {known}")
        return int(label)

    def _subset(self, label: int | None) -> tuple[np.ndarray, np.ndarray]:
        idx = np.arange(self.n_components) if label is None else np.flatnonzero(self.labels == label)
        w = self.weights[idx]
        return idx, w / w.sum()

    # ---- density -----------------------------------------------------------------------
    def _component_logs(self, z: np.ndarray, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        """``log w_j + log N(z; mu_j, Sigma_j)`` for the components ``idx`` (weights ``w``): ``(N, len(idx))``.

        Every component's whitened code ``L_j^-1 (z - mu_j) = L_j^-1 z - L_j^-1 mu_j`` comes out of one
        matrix product, in row blocks of at most ``_BLOCK_ELEMENTS`` temporaries."""
        columns, shift, const = self._whitening_factors()
        k, d = idx.size, self.dim
        if k != self.n_components:  # one class's components (all of them: the cached arrays as they are)
            columns, shift, const = columns[:, idx], shift[idx], const[idx]
        weights, shift, log_w = columns.reshape(d, k * d), shift.reshape(k * d), np.log(w)
        logs = np.empty((z.shape[0], k))
        step = max(1, min(z.shape[0], _BLOCK_ELEMENTS // (k * d)))
        buffer = np.empty((step, k * d))  # one temporary for every block: no allocation per block
        for s in range(0, z.shape[0], step):
            white = np.matmul(z[s:s + step], weights, out=buffer[:min(step, z.shape[0] - s)])
            white -= shift
            part = logs[s:s + step]
            np.einsum("nkd,nkd->nk", white.reshape(-1, k, d), white.reshape(-1, k, d), out=part)
            part += const
            part *= -0.5
            part += log_w
        return logs

    def _whitening_factors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per component ``L^-1`` as matrix-product columns ``(d, K, d)`` (``[j, k, i]`` = row i of
        ``L_k^-1``, column j), ``L^-1 mu`` ``(K, d)`` and ``log det Sigma + d log 2 pi`` ``(K,)``;
        computed once."""
        if not self._whitening:
            eye = np.broadcast_to(np.eye(self.dim), self.chol.shape)
            inverse = np.linalg.solve(self.chol, eye)  # triangular, positive diagonal: well defined
            shift = np.einsum("kij,kj->ki", inverse, self.means)
            logdet = 2.0 * np.log(np.diagonal(self.chol, axis1=1, axis2=2)).sum(axis=1)
            columns = np.ascontiguousarray(inverse.transpose(2, 0, 1))
            self._whitening.append((columns, shift, logdet + self.dim * np.log(2.0 * np.pi)))
        return self._whitening[0]  # threads racing here append equal tuples: the first one serves

    def _checked(self, z: Any) -> np.ndarray:
        z = np.asarray(z, np.float64)
        if z.ndim != 2 or z.shape[1] != self.dim or z.shape[0] == 0 or not np.all(np.isfinite(z)):
            raise InputError(f"latents must be finite (N >= 1, {self.dim}), got shape {z.shape}")
        return z

    def log_density(self, z: Any, label: int | None = None) -> np.ndarray:
        """log p(z) in nats under the mixture (or class ``label``'s mixture): ``(N,)`` float64.

        InputError for a shape other than ``(N, dim)`` or non-finite values."""
        z = self._checked(z)
        return _logsumexp(self._component_logs(z, *self._subset(label)))

    def class_posterior(self, z: Any, label: int) -> np.ndarray:
        """``p(label | z)`` under the whole mixture (Bayes' rule over its classes): ``(N,)`` float64 in [0, 1].

        InputError for an unlabelled prior, an unknown label, or latents as ``log_density`` refuses."""
        label = self.resolve_label(label)
        z = self._checked(z)
        logs = self._component_logs(z, np.arange(self.n_components), self.weights)
        return np.exp(_logsumexp(logs[:, self.labels == label]) - _logsumexp(logs))

    # ---- sampling ----------------------------------------------------------------------
    def sample(self, seed: int, start: int, count: int, *, temperature: float = 1.0,
               label: int | None = None) -> np.ndarray:
        """Rows ``start .. start+count-1`` of the seeded sample sequence: ``(count, dim)`` float32.

        Row i depends only on ``(seed, start + i)``, the mixture and the temperature (see
        module docstring). ``label``: a class index (``resolve_label``) or None for all; a
        labelled draw stays where the mixture's class posterior of ``label`` is at least
        ``REGION_POSTERIOR`` (module docstring)."""
        width = self.dim + 1
        if label is None or self.labels is None or len(self.classes) == 1:
            return self.sample_from_noise(noise.standard_normal(seed, start, count, width), temperature=temperature,
                                          label=label)
        eps = noise.standard_normal(seed, start, count, width * REGION_TRIES)
        out = np.empty((count, self.dim), np.float32)
        best = np.full(count, -1.0)
        todo = np.arange(count)
        for r in range(REGION_TRIES):
            if todo.size == 0:
                break
            z = self.sample_from_noise(eps[todo, r * width:(r + 1) * width], temperature=temperature, label=label)
            post = self.class_posterior(z, label)
            better = post > best[todo]
            out[todo[better]], best[todo[better]] = z[better], post[better]
            todo = todo[post < REGION_POSTERIOR]
        return out

    def sample_from_noise(self, eps: np.ndarray, *, temperature: float = 1.0, label: int | None = None) -> np.ndarray:
        """The unrestricted mixture draw for noise rows ``eps`` ``(N, dim + 1)``: ``mu_c + T L_c eps[:, :dim]``,
        component ``c`` (of ``label``'s components, or all) picked by ``eps[:, dim]``; ``(N, dim)`` float32."""
        idx, cuts = self._sampler(label)
        d = self.dim
        eps = eps.astype(np.float64)
        comp = np.searchsorted(cuts, eps[:, d], side="right")
        if idx is not None:
            comp = idx[comp]
        z = np.einsum("nij,nj->ni", self.chol[comp], eps[:, :d])
        if temperature != 1.0:  # times 1 changes no bit: skipped
            z *= float(temperature)
        z += self.means[comp]
        return z.astype(np.float32)

    def _sampler(self, label: int | None) -> tuple[np.ndarray | None, np.ndarray]:
        """The components of ``label`` (None: all, as None) and the normal quantiles of their cumulative
        weights, which pick a component from one N(0, 1) draw; computed once per label."""
        cached = self._samplers.get(label)
        if cached is None:
            idx, w = self._subset(label)
            cuts = np.array([NormalDist().inv_cdf(min(max(c, 1e-12), 1 - 1e-12)) for c in np.cumsum(w)[:-1]])
            cached = self._samplers[label] = (None if label is None else idx, cuts)
        return cached


def _logsumexp(logs: np.ndarray) -> np.ndarray:
    """Row-wise log-sum-exp of ``(N, M)``: ``(N,)``."""
    top = logs.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(logs - top).sum(axis=1, keepdims=True)))[:, 0]
