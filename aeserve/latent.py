"""Latent-space geometry in pure NumPy: interpolation, paths and traversals.

    line = slerp(z0, z1, np.linspace(0, 1, 8))               # (8, 16), endpoints exact
    walk = path(np.stack([z0, z1, z2]), steps=8, method="slerp")   # (15, 16) through 3 points
    sweep = traverse(z0, dim_index=2, values=[-2, 0, 2])     # (3, 16), column 2 replaced

Every function takes and returns float latent vectors; random latents come from
``aeserve.noise`` (counter-based N(0, I) rows).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .checks import check_int, finite_array
from .errors import ConfigError, InputError

__all__ = ["lerp", "slerp", "path", "traverse", "check_steps", "check_method", "METHODS"]

METHODS = ("slerp", "lerp")
_SLERP_EPS = 1e-6  # |sin(omega)| below this: (anti)parallel, fall back to lerp


def _vector(name: str, v, dim: int | None = None) -> np.ndarray:
    a = finite_array(v, name)
    if a.ndim != 1 or a.size == 0:
        raise InputError(f"{name} must be a 1-d latent vector (dim,), got shape {a.shape}")
    if dim is not None and a.shape[0] != dim:
        raise InputError(f"{name} has latent dim {a.shape[0]}, expected {dim}")
    return a


def _weights(t) -> np.ndarray:
    tt = finite_array(t, "t")
    if tt.ndim > 1:
        raise InputError(f"t must be a scalar or 1-d array, got shape {tt.shape}")
    return tt.reshape(-1)


def lerp(a, b, t) -> np.ndarray:
    """Linear interpolation ``(1-t) a + t b``.

    ``lerp(a, b, np.linspace(0, 1, 5))`` -> (5, dim) float32; a, b: (dim,); t: scalar or
    1-d. Rows with t == 0 / t == 1 are exactly a / b. InputError on shape/NaN problems.
    """
    a = _vector("a", a)
    b = _vector("b", b, a.shape[0])
    tt = _weights(t)[:, None]
    out = (1.0 - tt) * a + tt * b
    return _pin_ends(out, a, b, tt[:, 0])


def slerp(a, b, t) -> np.ndarray:
    """Spherical interpolation (Shoemake), for Gaussian latents.

    ``slerp(a, b, [0, .5, 1])`` -> (3, dim) float32, rows 0 and 2 exactly a and b.
    Follows the great circle between the directions of a and b with weights
    ``sin((1-t)w)/sin(w)`` and ``sin(tw)/sin(w)``; if a or b is zero or they are (anti-)
    parallel (|sin w| < 1e-6) it falls back to ``lerp``. InputError on shape/NaN problems.
    """
    a = _vector("a", a)
    b = _vector("b", b, a.shape[0])
    tt = _weights(t)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0.0 or nb == 0.0:
        return lerp(a, b, tt)
    cos = float(np.clip(np.dot(a / na, b / nb), -1.0, 1.0))
    omega = np.arccos(cos)
    sin = np.sin(omega)
    if abs(sin) < _SLERP_EPS:
        return lerp(a, b, tt)
    wa = np.sin((1.0 - tt) * omega) / sin
    wb = np.sin(tt * omega) / sin
    out = wa[:, None] * a + wb[:, None] * b
    return _pin_ends(out, a, b, tt)


def _pin_ends(out: np.ndarray, a: np.ndarray, b: np.ndarray, tt: np.ndarray) -> np.ndarray:
    out[tt == 0.0] = a
    out[tt == 1.0] = b
    return out.astype(np.float32)


_INTERP = {"slerp": slerp, "lerp": lerp}


def check_steps(steps) -> int:
    """``steps`` as an int >= 2, else InputError."""
    return check_int(steps, "steps", minimum=2, detail=" (points per segment, ends included)")


def check_method(method: str) -> str:
    """``method`` if it is 'slerp' or 'lerp', else ConfigError."""
    if method not in _INTERP:
        raise ConfigError(f"unknown interpolation method {method!r}; expected one of {', '.join(METHODS)}")
    return method


def path(points, steps: int, method: str = "slerp") -> np.ndarray:
    """A piecewise path through ``P >= 2`` latent points.

    ``path(np.stack([z0, z1, z2]), steps=8)`` -> (15, dim) float32.
    Each of the P-1 segments is sampled at ``steps`` evenly spaced t in [0, 1] (both ends
    included); a segment's end is the next one's start and appears once, so the output
    has ``(steps - 1) * (P - 1) + 1`` rows, row 0 is points[0] and the last row
    points[-1], exactly. For P = 2 that is ``steps`` rows.
    Raises InputError (steps < 2, P < 2, bad shape, NaN/Inf), ConfigError (method).
    """
    steps = check_steps(steps)
    interp = _INTERP[check_method(method)]
    pts = finite_array(points, "points")
    if pts.ndim != 2 or pts.shape[0] < 2 or pts.shape[1] < 1:
        raise InputError(f"points must have shape (P >= 2, dim), got {pts.shape}")
    t = np.linspace(0.0, 1.0, steps)
    segments = [interp(pts[i], pts[i + 1], t if i == 0 else t[1:]) for i in range(pts.shape[0] - 1)]
    return np.concatenate(segments, axis=0)


def traverse(z, dim_index: int, values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Vary one latent coordinate, keep the others.

    ``traverse(z, dim_index=3, values=np.linspace(-3, 3, 7))`` -> (7, dim) float32 whose
    column 3 is ``values`` and other columns are ``z``. Negative ``dim_index`` counts
    from the end. InputError on an out-of-range index, empty/non-finite values or bad z.
    """
    z = _vector("z", z)
    dim = z.shape[0]
    dim_index = check_int(dim_index, "dim_index")
    if not -dim <= dim_index < dim:
        raise InputError(f"dim_index {dim_index} is out of range for latent dim {dim}; expected 0..{dim - 1}")
    vals = _weights(values)
    if vals.size == 0:
        raise InputError("values must not be empty; expected at least one value for the coordinate")
    out = np.repeat(z[None, :], vals.size, axis=0)
    out[:, dim_index] = vals
    return out.astype(np.float32)
