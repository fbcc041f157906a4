"""Generation and latent-path operations of ``aeserve.Client``: generate, interpolate, traverse."""

from __future__ import annotations

import math
import threading
from typing import Any, Callable, Sequence

import numpy as np

from .. import latent, noise
from ..checks import check_int
from ..errors import ConfigError, InputError, PriorMissingError
from ..prior import LatentPrior
from .base import ClientBase

PRIORS = ("fitted", "standard")


class GenerationOps(ClientBase):
    """Decode images from drawn or constructed latents."""

    def generate(self, n: int, *, seed: int = 0, temperature: float = 1.0, prior: str | None = None,
                 label: int | str | None = None) -> np.ndarray:
        """``n`` images decoded from latents drawn from a prior; item i depends only on (seed, i).

        ``c.generate(64, seed=0)``; ``c.generate(8, label=3)``; ``c.generate(8, label="Sneaker")``.
        ``prior``: "fitted" (the Gaussian mixture in the card, ``z = mu_k + T L_k eps``),
        "standard" (VAE only: ``z = T eps``, eps ~ N(0, I)), or None: fitted where the card
        has one, else standard. ``label``: a class index or name; only the components of
        that class are sampled (fitted prior of labelled data). Latents are drawn
        ``LATENT_WINDOW`` rows at a time (``LatentWindows``), so memory is the output plus
        about one window of latents per request in flight.
        Raises InputError (n < 1, bad seed, temperature outside [0, MAX_TEMPERATURE], unknown
        label), SizeLimitError (before allocating, beyond the Client's ``limits``),
        ConfigError (unknown prior; standard prior on a non-VAE), PriorMissingError (no fitted prior in the card:
        fit one with ``aeserve fit-prior``), CardError (the card's prior is corrupt).
        """
        n = check_int(n, "n", minimum=1, detail=" (number of images)")
        t = _temperature(temperature)
        noise.check_seed(seed)
        fitted = self._generation_prior(prior, label)
        dim = self.card.latent_dim
        self._limits.check_bytes(n * (self.image_bytes + 4 * dim), f"generate(n={n})")
        cls = None if label is None or fitted is None else fitted.resolve_label(label, self.card.class_names)

        def draw(s: int, count: int) -> np.ndarray:
            if fitted is not None:
                return fitted.sample(seed, s, count, temperature=float(t), label=cls)
            return noise.standard_normal(seed, s, count, dim) * t

        chunk = self._info.max_batch_size
        latents = LatentWindows(draw, n, chunk * max(1, LATENT_WINDOW // chunk))

        def work(s: int, e: int) -> np.ndarray:
            return self._conn.runtime.decode(self.model, latents.rows(s, e))

        return self._map(n, work, desc="generate")[0]

    @property
    def prior(self) -> LatentPrior | None:
        """The card's fitted latent prior (validated, fingerprint checked), or None. CardError if corrupt."""
        cached = getattr(self, "_prior_cache", None)
        if cached is None or cached[0] is not self.card:
            cached = (self.card, LatentPrior.from_card(self.card))
            self._prior_cache = cached
        return cached[1]

    def _generation_prior(self, prior: str | None, label: Any) -> LatentPrior | None:
        """The fitted prior to sample, or None for the standard normal; raises as ``generate`` documents."""
        if prior is not None and prior not in PRIORS:
            raise ConfigError(f"unknown prior {prior!r}; expected one of {', '.join(PRIORS)} (or None: fitted "
                              "where the model has one)")
        if prior == "standard":
            if label is not None:
                raise InputError("label= needs the fitted prior (its class mixtures); drop prior='standard'")
            if not self.card.is_vae:
                raise ConfigError(f"model {self.model!r} is a {self.card.family!r} autoencoder: its codes do not "
                                  "follow N(0, I), so the standard prior decodes to noise; use its fitted prior "
                                  f"(fit one with `aeserve fit-prior --model {self.model}`)")
            return None
        fitted = self.prior
        if fitted is None:
            if prior is None and label is None and self.card.is_vae:
                return None
            why = ("label= needs a fitted prior with classes" if label is not None else
                   "prior='fitted' was asked for" if prior == "fitted" else
                   f"codes of family {self.card.family!r} do not follow N(0, I)")
            raise PriorMissingError(f"model {self.model!r} has no fitted latent prior in its card ({why}); fit one "
                                    f"with `aeserve fit-prior --model {self.model}`")
        return fitted

    def interpolate(self, a: Any, b: Any, *, steps: int = 8, method: str = "slerp") -> np.ndarray:
        """``steps`` images along the latent path between images ``a`` and ``b`` (ends included)."""
        pts = np.concatenate([self._one_image(a, "image a"), self._one_image(b, "image b")])
        return self.interpolate_path(pts, steps=steps, method=method)

    def interpolate_path(self, points: Any, *, steps: int = 8, method: str = "slerp") -> np.ndarray:
        """Images along a path through P >= 2 images; ``(steps-1)*(P-1)+1`` images
        (see ``aeserve.latent.path``). InputError if steps < 2 or P < 2, ConfigError for the method."""
        steps = latent.check_steps(steps)
        latent.check_method(method)
        x = self._images(points, "path points")
        if len(x) < 2:
            raise InputError(f"a path needs at least 2 images, got {len(x)}")
        rows = (steps - 1) * (len(x) - 1) + 1
        self._limits.check_bytes(rows * (self.image_bytes + 12 * self.card.latent_dim),
                                 f"a path of {rows} images (steps={steps})")
        return self.decode(latent.path(self.encode(x), steps, method))

    def traverse(self, x: Any, *, dim: int, values: Sequence[float] | np.ndarray) -> np.ndarray:
        """Encode one image, set latent coordinate ``dim`` to each of ``values``, decode:
        ``(len(values), C, H, W)``."""
        z = self.encode(self._one_image(x, "image"))[0]
        return self.decode(latent.traverse(z, dim, values))

MAX_TEMPERATURE = 1000.0  # latents beyond ~1000 standard deviations decode to saturated noise
#: latent rows drawn at once when a call spans several chunks: a draw's cost is mostly fixed
#: (about a hundred numpy calls), so one draw of this many rows serves several chunks
LATENT_WINDOW = 4096


class LatentWindows:
    """Rows ``[0, n)`` of ``draw(start, count)``, drawn ``size`` rows (a window) at a time.

    ``rows(s, e)`` returns rows ``s..e-1`` (within one window); the first request for a window
    draws it, the last hands it out and forgets it, so at most the windows of the requests in
    flight are held. Thread-safe. The draws are counter-based, so the rows are the same
    whatever ``size``: windows change only how many rows each numpy call sees. Raises
    ValueError for a span across two windows (the Client's chunks, a divisor of ``size``,
    never are).
    """

    def __init__(self, draw: Callable[[int, int], np.ndarray], n: int, size: int):
        self._draw, self._n, self._size = draw, int(n), max(1, int(size))
        self._lock = threading.Lock()
        self._open: dict[int, list[Any]] = {}   # window start -> [rows, rows handed out]

    def rows(self, s: int, e: int) -> np.ndarray:
        w0 = s - s % self._size
        if e - w0 > self._size:
            raise ValueError(f"rows {s}..{e} straddle the windows of {self._size} rows")
        with self._lock:
            entry = self._open.get(w0)
            if entry is None:
                entry = self._open[w0] = [self._draw(w0, min(self._size, self._n - w0)), 0]
            entry[1] += e - s
            if entry[1] >= len(entry[0]):
                del self._open[w0]
        return entry[0][s - w0:e - w0]


def _temperature(t: Any) -> np.float32:
    """``t`` as float32 in [0, MAX_TEMPERATURE]; InputError otherwise (so latents stay finite)."""
    if isinstance(t, (bool, np.bool_, str, bytes)):
        raise InputError(f"temperature must be a number in [0, {MAX_TEMPERATURE:g}], got {t!r}")
    try:
        f = float(t)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"temperature must be a number in [0, {MAX_TEMPERATURE:g}], got {t!r}") from None
    if not math.isfinite(f) or not 0.0 <= f <= MAX_TEMPERATURE:
        raise InputError(f"temperature must be a finite number in [0, {MAX_TEMPERATURE:g}] (a multiple of the "
                         f"prior's standard deviation), got {t!r}")
    return np.float32(f)
