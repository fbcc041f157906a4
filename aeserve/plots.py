"""Latent-space scatter plots (matplotlib's Agg canvas, imported only when plotting).

    xy, explained = pca_2d(z)                                   # (N, 2), variance share
    latent_scatter(z, labels, "latent.png", title="mnist_vae")  # PNG, written atomically

2-d latents are drawn as they are; larger ones are projected on their first two
principal components (NumPy SVD of the centred codes); 1-d latents against a zero axis.
Points are coloured by integer label (tab10/tab20), or one colour without labels; the
legend shows class names when given (``class_names[label]``), else the label numbers.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .checks import finite_array
from .errors import InputError
from .fileio import write_bytes_atomic

__all__ = ["pca_2d", "latent_scatter", "new_figure", "save_figure"]

MAX_LEGEND_CLASSES = 20


def _codes(z: Any) -> np.ndarray:
    arr = finite_array(z, "latents")
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"latents must have shape (N >= 1, latent_dim >= 1), got {arr.shape}")
    return arr


def pca_2d(z: Any) -> tuple[np.ndarray, float]:
    """Project codes on their first two principal components.

    ``pca_2d(z)`` -> (``(N, 2)`` float64, share of variance the two components explain).
    Dim 2 is returned unchanged (share 1.0); dim 1 gets a zero second column. Component
    signs are fixed (largest |loading| positive) so plots are reproducible.
    """
    arr = _codes(z)
    if arr.shape[1] <= 2:
        return (np.pad(arr, ((0, 0), (0, 2 - arr.shape[1]))), 1.0)
    centred = arr - arr.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    comps = vt[:2]
    signs = np.sign(comps[np.arange(2), np.argmax(np.abs(comps), axis=1)])
    comps = comps * np.where(signs == 0, 1.0, signs)[:, None]
    total = float(np.sum(s**2))
    share = float(np.sum(s[:2] ** 2) / total) if total > 0 else 1.0
    return centred @ comps.T, share


def latent_scatter(z: Any, labels: Any, path: str | os.PathLike[str], *, title: str | None = None,
                   dpi: int = 120, class_names: Sequence[str] | None = None) -> Path:
    """Write a scatter plot of the codes ``z`` (N, latent_dim) coloured by ``labels`` (N,) ints or None.

    ``latent_scatter(client.encode(ds.x), ds.y, "latent.png", class_names=ds.class_names)``
    -> ``Path("latent.png")``; the legend names each label ``class_names[label]``.
    Raises InputError for bad codes/labels or class names that miss a label, DataError
    if the file cannot be written.
    """
    arr = _codes(z)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (arr.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
            raise InputError(f"labels must be integers of shape ({arr.shape[0]},), got {labels.dtype} {labels.shape}")
    if class_names is not None:
        class_names = [str(n) for n in class_names]
        if labels is None or labels.min() < 0 or labels.max() >= len(class_names):
            found = "no labels" if labels is None else f"labels in [{labels.min()}, {labels.max()}]"
            raise InputError(f"class_names has {len(class_names)} names but got {found}; "
                             f"expected labels 0..{len(class_names) - 1}")
    xy, share = pca_2d(arr)
    dim = arr.shape[1]
    axes_names = ("z0", "z1") if dim == 2 else (("z0", "") if dim == 1 else ("PC1", "PC2"))

    fig = new_figure((6.4, 5.6))
    ax = fig.add_subplot(1, 1, 1)
    size = max(2.0, min(16.0, 20000.0 / arr.shape[0]))
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=size, alpha=0.6, linewidths=0)
    else:
        classes = np.unique(labels)
        cmap = "tab10" if classes.size <= 10 else "tab20"
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap=cmap, s=size, alpha=0.6, linewidths=0,
                        vmin=classes.min() - 0.5, vmax=classes.max() + 0.5)
        if classes.size <= MAX_LEGEND_CLASSES:
            handles = [ax.plot([], [], "o", color=sc.cmap(sc.norm(c)), ms=5)[0] for c in classes]
            names = [str(c) if class_names is None else class_names[c] for c in classes]
            ax.legend(handles, names, title="label" if class_names is None else "class", loc="best", fontsize=8)
    ax.set_xlabel(axes_names[0])
    ax.set_ylabel(axes_names[1])
    subtitle = f"{arr.shape[0]} codes, latent dim {dim}" + (f", PCA {share:.0%} of variance" if dim > 2 else "")
    ax.set_title(f"{title}\n{subtitle}" if title else subtitle, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi)


def new_figure(figsize: tuple[float, float]) -> Any:
    """A matplotlib ``Figure`` on its own Agg canvas: no pyplot, no global figure registry,
    and the process's matplotlib backend is left as it is. ``new_figure((6.4, 4.8))``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Render ``fig`` as PNG and write it atomically to ``path``; returns the Path.
    Raises DataError when the file cannot be written."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return write_bytes_atomic(Path(path), buf.getvalue())
