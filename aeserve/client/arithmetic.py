"""Latent arithmetic of ``aeserve.Client``: attribute vectors and ``z + alpha * v``.

    v = c.attribute_vector(x_with, x_without)          # mean code of "with" minus "without"
    v = c.label_vector(target=7, source=1)             # from the fitted prior's class means
    strips = c.shift(x, v, alphas=[0, 0.5, 1, 1.5])    # (N, 4, C, H, W): decode(z + a * v)

The vectors live in the model's latent space (VAE: posterior means), so a vector from one
model is meaningless for another; ``shift`` checks the dimension.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import InputError, PriorMissingError
from ..images import as_latents
from .base import ClientBase


def check_alphas(alphas: Any) -> np.ndarray:
    """``alphas`` as a non-empty 1-d float64 array of finite numbers, else InputError."""
    try:
        a = np.asarray(alphas, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"alphas must be a list of numbers, got {type(alphas).__name__}") from None
    if a.ndim != 1 or a.size == 0:
        raise InputError(f"alphas must be a non-empty 1-d list of numbers like [0, 0.5, 1], got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise InputError("alphas contain NaN or Inf; expected finite numbers")
    return a


class ArithmeticOps(ClientBase):
    """Directions in latent space and moving images along them."""

    def attribute_vector(self, x_with: Any, x_without: Any) -> np.ndarray:
        """Mean code of the images that have an attribute minus that of images that lack it:
        ``(latent_dim,)`` float32. Each set: images as for ``encode`` (at least one).
        Raises InputError for an empty set or images of the wrong shape."""
        z_with = self.encode(self._images(x_with, "images with the attribute (x_with)"))
        z_without = self.encode(self._images(x_without, "images without the attribute (x_without)"))
        return (z_with.astype(np.float64).mean(0) - z_without.astype(np.float64).mean(0)).astype(np.float32)

    def label_vector(self, target: int | str, source: int | str) -> np.ndarray:
        """Mean code of class ``target`` minus that of class ``source``, from the fitted prior's
        class mixtures (no images needed): ``(latent_dim,)`` float32. Labels as for ``generate``.
        Raises PriorMissingError (no fitted prior), InputError (unknown label)."""
        prior = self.prior  # type: ignore[attr-defined]  # GenerationOps, combined in Client
        if prior is None:
            raise PriorMissingError(f"model {self.model!r} has no fitted latent prior in its card; fit one with "
                                    f"`aeserve fit-prior --model {self.model}` (or use attribute_vector with images)")
        names = self.card.class_names
        means = []
        for label in (target, source):
            k = prior.resolve_label(label, names)
            sel = prior.labels == k
            w = prior.weights[sel] / prior.weights[sel].sum()
            means.append(w @ prior.means[sel])
        return (means[0] - means[1]).astype(np.float32)

    def shift(self, x: Any, v: Any, *, alphas: Sequence[float] | np.ndarray = (0.0, 0.5, 1.0, 1.5, 2.0)) -> np.ndarray:
        """Decode ``encode(x) + alpha * v`` for every image and alpha: ``(N, len(alphas), C, H, W)``.

        ``v``: ``(latent_dim,)`` (from ``attribute_vector``/``label_vector``). Raises
        InputError for empty/non-finite alphas, a vector of the wrong dim, bad images;
        SizeLimitError (before any work) when the output would exceed the Client's ``limits``."""
        a = check_alphas(alphas)
        if np.ndim(v) != 1:
            raise InputError(f"v must be one vector of shape ({self.card.latent_dim},), got shape {np.shape(v)}")
        vec = as_latents(v, self.card.latent_dim, allow_single=True, what="attribute vector v")
        x = self._images(x)
        self._limits.check_bytes(len(x) * a.size * self.image_bytes, f"shift of {len(x)} images x {a.size} alphas")
        z = self.encode(x)
        moved = z[:, None, :].astype(np.float64) + a[None, :, None] * vec[0].astype(np.float64)[None, None, :]
        out = self.decode(moved.reshape(-1, z.shape[1]).astype(np.float32))
        return out.reshape(len(z), a.size, *out.shape[1:])
