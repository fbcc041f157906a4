"""Export a fine-tuned classifier as one Triton model ``<name>_classifier`` (``x`` -> ``probs``).

    from aeserve.export import export_classifier
    r = export_classifier(result.model, "model_repository", "mnist_vae")   # mnist_vae_classifier
    r.version, r.paths["classifier"]

Same rules as ``export_model``: arguments and the repository path are checked first, the
graph is exported (symbolic batch, no random op, one self-contained file), the parity gate
compares ONNX Runtime with torch, and only then the new version is written atomically.
The card (the encoder's card plus ``task`` = classifier and ``class_names``) goes into the
ONNX ``metadata_props`` and the config's ``parameters``. Raises RepositoryError,
ConfigError, ExportError, ParityError as ``export_model`` does.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..contract import CLASSIFIER_OUTPUT, ENCODER_INPUT
from ..errors import ExportError
from ..repository import CLASSIFIER_SUFFIX, CONFIG_FILENAME, DEFAULT_REPOSITORY
from .exporter import ExportResult, export_target
from .onnx_graphs import EXAMPLE_BATCH, _export_one, export_card
from .parity import check_parity
from .triton_config import build_config, config_text
from .writer import write_models

INPUT, OUTPUT = ENCODER_INPUT, CLASSIFIER_OUTPUT


def export_classifier(model, repo: str | os.PathLike[str] = DEFAULT_REPOSITORY, name: str | None = None, *,
                      max_batch: int = 256, kind: str = "gpu", instances: int = 1,
                      preferred_batch_sizes=None, queue_delay_us: int = 100, warmup: bool = False,
                      version: int | None = None, fp16: bool = False, quantize: str | None = None,
                      **_quantization: object) -> ExportResult:
    """Write ``model`` (an ``aeserve.finetune.ClassifierModel``) as ``<name>_classifier``.

    ``name`` defaults to the card's ``name``, else ``<dataset>_<family>``. Returns an
    ExportResult whose ``paths`` has ``classifier`` and ``classifier_config``.
    """
    card = getattr(model, "card", None)
    if card is None or card.get("task") != "classifier" or not hasattr(model, "head"):
        raise ExportError(f"expected an aeserve.finetune.ClassifierModel, got {type(model).__name__}")
    if fp16 or quantize is not None:
        raise ExportError("fp16/int8 export is not offered for classifiers; export them in fp32")
    name, settings, root = export_target(card, name, repo, max_batch=max_batch, kind=kind, instances=instances,
                                         preferred_batch_sizes=preferred_batch_sizes,
                                         queue_delay_us=queue_delay_us, warmup=warmup)
    named = export_card(card, name, False)
    n_classes = len(named.class_names or ())
    was_training = model.training
    model.eval()
    try:
        example = torch.rand(EXAMPLE_BATCH, *named.input_shape, generator=torch.Generator().manual_seed(0))
        graph = _export_one("classifier", model, example, INPUT, (OUTPUT,),
                            (n_classes,), named.to_dict(), False)
        report = check_parity(graph, model, max_batch=settings.max_batch)
    finally:
        model.train(was_training)
    triton = name + CLASSIFIER_SUFFIX
    files = {triton: (config_text(build_config(triton, graph, settings, named)), graph.serialize())}
    written, paths = write_models(root, files, version=version)
    return ExportResult(name, written, {"classifier": paths[triton],
                                        "classifier_config": Path(root) / triton / CONFIG_FILENAME},
                        graph.exporter, (report,), False)
