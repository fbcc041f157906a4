"""Export: torch autoencoder -> two ONNX graphs -> a versioned Triton model repository.

    from aeserve.export import export_model, export_checkpoint, regenerate, list_models
    export_model(model, "model_repository", "mnist_vae")          # ExportResult(name, version, paths)
    export_checkpoint("export/checkpoints/mnist_vae.pt", name="mnist_vae")
    regenerate("export/manifest.json", "model_repository")       # rebuild shipped models
    list_models("model_repository")                               # torch-free listing

Names are imported on first use, so ``aeserve.export.listing`` (and ``aeserve models``)
never import torch.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "export_model": "exporter",
    "export_checkpoint": "exporter",
    "ExportResult": "exporter",
    "ServingSettings": "triton_config",
    "build_config": "triton_config",
    "config_text": "triton_config",
    "FP32_TOLERANCE": "parity",
    "FP16_TOLERANCE": "parity",
    "check_parity": "parity",
    "regenerate": "manifest",
    "load_manifest": "manifest",
    "ManifestEntry": "manifest",
    "export_classifier": "classifier",
    "list_models": "listing",
    "ModelInfo": "listing",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aeserve.export' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = sorted(_LAZY)
