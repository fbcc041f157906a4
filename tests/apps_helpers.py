"""Small untrained restoration models exported into a temporary repository, for the tests of
the restoration, anomaly-map and feature calls (``restoration_repository(root)``)."""

from __future__ import annotations

from pathlib import Path

# name -> (family, input shape, hparams)
MODELS = {
    "t_inpaint": ("dae", (1, 28, 28), {"noise": "inpaint", "hidden": [32]}),
    "t_sr": ("dae", (1, 28, 28), {"noise": "downsample", "noise_level": 4, "hidden": [32]}),
    "t_color": ("dae", (3, 16, 16), {"noise": "grayscale", "hidden": [32]}),
    "t_vae": ("vae", (1, 28, 28), {"hidden": [32]}),
}


def restoration_repository(root: Path) -> Path:
    """Export every model of MODELS (MLP, latent 8, seeded weights) into ``root``; return it."""
    import torch

    from aeserve.card import ModelCard
    from aeserve.export import export_model
    from aeserve.models import build_model

    for i, (name, (family, shape, hp)) in enumerate(MODELS.items()):
        torch.manual_seed(i)
        card = ModelCard(family, "mlp", shape, 8, "bernoulli", "synthetic", {"hparams": __import__("json").dumps(hp)})
        export_model(build_model(card), root, name, max_batch=16, kind="cpu")
    return root
