"""Export an autoencoder to a Triton model repository: two ONNX graphs, gated, versioned.

    from aeserve.export import export_model, export_checkpoint
    r = export_model(model, "model_repository", "mnist_vae", max_batch=256, kind="gpu")
    r.name, r.version, r.paths["encoder"]        # "mnist_vae", 1, .../mnist_vae_encoder/1/model.onnx
    r = export_checkpoint("vae.pt", name="mnist_vae", fp16=True)

Writes ``<name>_encoder`` and ``<name>_decoder`` (``config.pbtxt`` + ``<version>/model.onnx``
each) as the next version. Order: validate every argument and the repository path,
export both graphs, run the parity gate on both, and only then write (atomically).
So any error leaves the repository untouched. Raises RepositoryError (bad name, repository
path is a file, version taken), ConfigError (bad batching/placement values),
ExportError (export/onnx.checker/ORT failure), ParityError (gate failed),
CheckpointError (``export_checkpoint``: unusable checkpoint).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import ExportError
from ..repository import CONFIG_FILENAME, DECODER_SUFFIX, DEFAULT_REPOSITORY, ENCODER_SUFFIX, check_model_name
from .onnx_graphs import export_card, export_graphs
from .parity import ParityReport, check_parity
from .triton_config import ServingSettings, build_config, config_text
from .writer import check_repository_path, write_models


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote. ``paths`` keys: encoder, decoder (model.onnx files),
    encoder_config, decoder_config (config.pbtxt files)."""

    name: str
    version: int
    paths: dict[str, Path]
    exporter: str = "dynamo"                 # "dynamo", or "torchscript" when the fallback ran
    parity: tuple[ParityReport, ...] = ()
    fp16: bool = False

    @property
    def max_abs_diff(self) -> float:
        return max((p.max_abs_diff for p in self.parity), default=0.0)


def export_model(model, repo: str | os.PathLike[str] = DEFAULT_REPOSITORY, name: str | None = None, *,
                 max_batch: int = 256, kind: str = "gpu", instances: int = 1, fp16: bool = False,
                 preferred_batch_sizes: Sequence[int] | None = None, queue_delay_us: int = 100,
                 warmup: bool = False, version: int | None = None,
                 card_extra: Mapping[str, str] | None = None) -> ExportResult:
    """Export ``model`` (an ``aeserve.models.Autoencoder``) as model ``name`` into ``repo``.

    ``name`` defaults to the card's ``name``, else ``<dataset>_<family>``. ``version``
    defaults to the next free one; an explicit version that exists is refused.
    ``card_extra``: entries added to the exported card (e.g. the fitted prior from
    ``aeserve fit-prior --out``); a prior among them must pass its checks (CardError).
    """
    card = getattr(model, "card", None)
    if card is None or not hasattr(model, "encoder") or not hasattr(model, "decoder"):
        raise ExportError(f"expected an aeserve Autoencoder (with .card, .encoder, .decoder), "
                          f"got {type(model).__name__}")
    name = check_model_name(name if name is not None else (card.name or f"{card.dataset}_{card.family}"))
    settings = ServingSettings(max_batch=max_batch, kind=kind, instances=instances,
                               preferred_batch_sizes=None if preferred_batch_sizes is None
                               else tuple(preferred_batch_sizes),
                               queue_delay_us=queue_delay_us, warmup=warmup)
    root = check_repository_path(repo)
    if not isinstance(fp16, bool):
        raise ExportError(f"fp16 must be True or False, got {fp16!r}")

    enc, dec = export_graphs(model, name, fp16=fp16)
    was_training = model.training
    model.eval()
    try:
        reports = (check_parity(enc, model.encoder, max_batch=settings.max_batch),
                   check_parity(dec, model.decoder, max_batch=settings.max_batch))
    finally:
        model.train(was_training)

    named_card = export_card(card.with_extra(**dict(card_extra)) if card_extra else card, name, fp16)
    if card_extra:
        from ..prior import LatentPrior

        LatentPrior.from_card(named_card)  # fingerprint, factors, dim: CardError before anything is written
        from .recard import merge_metadata

        for graph in (enc, dec):  # the graphs carry the same card as the configs
            merge_metadata(graph.proto, named_card.to_dict())
    enc_name, dec_name = name + ENCODER_SUFFIX, name + DECODER_SUFFIX
    files = {
        enc_name: (config_text(build_config(enc_name, enc, settings, named_card)), enc.serialize()),
        dec_name: (config_text(build_config(dec_name, dec, settings, named_card)), dec.serialize()),
    }
    written_version, onnx_paths = write_models(root, files, version=version)
    paths = {
        "encoder": onnx_paths[enc_name], "decoder": onnx_paths[dec_name],
        "encoder_config": root / enc_name / CONFIG_FILENAME, "decoder_config": root / dec_name / CONFIG_FILENAME,
    }
    exporter = "torchscript" if "torchscript" in (enc.exporter, dec.exporter) else "dynamo"
    return ExportResult(name, written_version, paths, exporter, reports, fp16)


def export_checkpoint(ckpt_path: str | os.PathLike[str], repo: str | os.PathLike[str] = DEFAULT_REPOSITORY,
                      name: str | None = None, **options) -> ExportResult:
    """Load a checkpoint (``aeserve.checkpoint.load``) and ``export_model`` it.

    ``name`` defaults to the card's ``name``, else the checkpoint's file stem. Options as
    in ``export_model``. Argument errors are raised before the checkpoint is read.
    """
    from .. import checkpoint  # torch-heavy; imported on use

    if name is not None:
        check_model_name(name)
    ServingSettings(**{k: options[k] for k in ("max_batch", "kind", "instances", "queue_delay_us", "warmup")
                       if k in options})
    check_repository_path(repo)
    model = checkpoint.load(ckpt_path)
    if name is None:
        name = model.card.name or Path(ckpt_path).stem
    return export_model(model, repo, name, **options)
