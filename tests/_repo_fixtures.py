"""The shared test repository of UNTRAINED models (the ``client_repo`` fixture in conftest.py)
and deterministic test images.

Models (exported with ``aeserve.export.export_model``, max_batch 8 so splitting is exercised):

- ``t_vae``: VAE, conv, latent 16, bernoulli
- ``t_ae``:  AE, mlp, latent 2
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MAX_BATCH = 8
MODELS = {
    "t_vae": dict(family="vae", arch="conv", latent_dim=16),
    "t_ae": dict(family="ae", arch="mlp", latent_dim=2),
}


def export_test_repository(root: Path) -> Path:
    """Export the MODELS (seeded, untrained) into ``root``; returns ``root``."""
    import torch

    from aeserve.card import ModelCard
    from aeserve.export import export_model
    from aeserve.models import build_model

    for i, (name, spec) in enumerate(MODELS.items()):
        torch.manual_seed(i)
        card = ModelCard(spec["family"], spec["arch"], (1, 28, 28), spec["latent_dim"], "bernoulli", "mnist")
        card = card.with_extra(**{"anomaly.method": "mse", "anomaly.threshold": 0.05})
        export_model(build_model(card), root, name, max_batch=MAX_BATCH, kind="cpu")
    return root


def images(n: int, seed: int = 0) -> np.ndarray:
    """Deterministic float32 (n, 1, 28, 28) test images in [0, 1] (smooth blobs, not noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28].astype(np.float32)
    cy, cx = rng.uniform(8, 20, (2, n, 1, 1)).astype(np.float32)
    r = rng.uniform(3, 7, (n, 1, 1)).astype(np.float32)
    img = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r ** 2))
    return img[:, None].astype(np.float32)


def labelled_npz(path: Path, per_class: int = 25, classes: int = 10) -> Path:
    """A small labelled dataset file (``x`` blobs, ``y`` = index mod ``classes``) for prior fitting."""
    n = per_class * classes
    np.savez(path, x=images(n, seed=5), y=np.arange(n) % classes)
    return path
