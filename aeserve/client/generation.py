"""Generation and latent-path operations of ``aeserve.Client``: generate, interpolate, traverse."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import latent, noise
from ..checks import check_int
from ..errors import InputError
from .base import ClientBase


class GenerationOps(ClientBase):
    """Decode images from drawn or constructed latents."""

    def generate(self, n: int, *, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
        """``n`` images decoded from z ~ N(0, T^2 I); item i depends only on (seed, i).

        Latents are drawn per chunk, so memory is the output plus one chunk per request in
        flight. Raises InputError for n < 1, a negative/non-integer seed or a temperature
        outside [0, MAX_TEMPERATURE]; SizeLimitError (before allocating) when the images
        would take more than the Client's ``limits``.
        """
        n = check_int(n, "n", minimum=1, detail=" (number of images)")
        t = _temperature(temperature)
        noise.check_seed(seed)
        dim = self.card.latent_dim
        self._limits.check_bytes(n * (self.image_bytes + 4 * dim), f"generate(n={n})")

        def work(s: int, e: int) -> np.ndarray:
            z = noise.standard_normal(seed, s, e - s, dim)
            return self._conn.runtime.decode(self.model, z * t)

        return self._map(int(n), work, desc="generate")[0]

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


def _temperature(t: Any) -> np.float32:
    """``t`` as float32 in [0, MAX_TEMPERATURE]; InputError otherwise (so latents stay finite)."""
    if isinstance(t, (bool, np.bool_, str, bytes)):
        raise InputError(f"temperature must be a number in [0, {MAX_TEMPERATURE:g}], got {t!r}")
    try:
        f = float(t)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"temperature must be a number in [0, {MAX_TEMPERATURE:g}], got {t!r}") from None
    if not np.isfinite(f) or not 0.0 <= f <= MAX_TEMPERATURE:
        raise InputError(f"temperature must be a finite number in [0, {MAX_TEMPERATURE:g}] (a multiple of the "
                         f"prior's standard deviation), got {t!r}")
    return np.float32(f)
