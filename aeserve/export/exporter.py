"""Export an autoencoder to a Triton model repository: two ONNX graphs, gated, versioned.

    from aeserve.export import export_model, export_checkpoint
    r = export_model(model, "model_repository", "mnist_vae", max_batch=256, kind="gpu")
    r.name, r.version, r.paths["encoder"]        # "mnist_vae", 1, .../mnist_vae_encoder/1/model.onnx
    r = export_checkpoint("vae.pt", name="mnist_vae", fp16=True)
    r = export_checkpoint("vae.pt", name="mnist_vae_int8", quantize="int8")   # r.quantization.drop_db

Writes ``<name>_encoder`` and ``<name>_decoder`` (``config.pbtxt`` + ``<version>/model.onnx``
each) as the next version. Order: validate every argument and the repository path,
export both graphs, run the parity gate on both, (``quantize="int8"``: quantize them and run
the int8 quality gate, ``aeserve.export.quantize``), and only then write (atomically).
So any error leaves the repository untouched. The model is exported from a CPU copy, so a
model trained on a GPU exports as it is. Both cards carry the same ``aeserve.export_id``
(a hash of the two graphs) and each config serves exactly the version written with it.
Raises RepositoryError (bad name, repository
path is a file, version taken), ConfigError (bad batching/placement values),
ExportError (export/onnx.checker/ORT failure), ParityError (gate failed),
QuantizationError (the int8 graphs lose more PSNR than ``max_psnr_drop_db``),
CheckpointError (``export_checkpoint``: unusable checkpoint).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..card import ModelCard
from ..errors import ConfigError, ExportError
from ..repository import CONFIG_FILENAME, DECODER_SUFFIX, DEFAULT_REPOSITORY, ENCODER_SUFFIX, check_model_name
from .onnx_graphs import Graph, export_card, export_graphs, pair_id, write_card
from .parity import ParityReport, check_parity
from .triton_config import ServingSettings, build_config, config_text
from .writer import check_repository_path, reserve_version, write_models

if TYPE_CHECKING:
    from .quantize import QuantReport

log = logging.getLogger(__name__)


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
    quantization: "QuantReport | None" = None    # set by an int8 export

    @property
    def max_abs_diff(self) -> float:
        return max((p.max_abs_diff for p in self.parity), default=0.0)


def export_target(card: ModelCard, name: str | None, repo: str | os.PathLike[str], *,
                  preferred_batch_sizes: Sequence[int] | None, **serving: Any) -> tuple[str, ServingSettings, Path]:
    """The checked model name (default: the card's ``name``, else ``<dataset>_<family>``),
    its ``ServingSettings`` and the repository root an export writes to.

    Raises ExportError/RepositoryError for a bad name or root, ConfigError for bad settings.
    """
    name = check_model_name(name if name is not None else (card.name or f"{card.dataset}_{card.family}"))
    settings = ServingSettings(preferred_batch_sizes=None if preferred_batch_sizes is None
                               else tuple(preferred_batch_sizes), **serving)
    return name, settings, check_repository_path(repo)


def export_model(model, repo: str | os.PathLike[str] = DEFAULT_REPOSITORY, name: str | None = None, *,
                 max_batch: int = 256, kind: str = "gpu", instances: int = 1, fp16: bool = False,
                 preferred_batch_sizes: Sequence[int] | None = None, queue_delay_us: int = 100,
                 warmup: bool = False, version: int | None = None, quantize: str | None = None,
                 max_psnr_drop_db: float | None = None, calibration=None, gate_images=None,
                 card_extra: Mapping[str, str] | None = None) -> ExportResult:
    """Export ``model`` (an ``aeserve.models.Autoencoder``) as model ``name`` into ``repo``.

    ``name`` defaults to the card's ``name``, else ``<dataset>_<family>``. ``version``
    defaults to the next free one; an explicit version that exists is refused.
    ``quantize="int8"`` writes int8 graphs instead (``aeserve.export.quantize.quantize_pair``
    with ``max_psnr_drop_db``, ``calibration`` and ``gate_images``).
    ``card_extra``: entries added to the exported card (e.g. the fitted prior from
    ``aeserve fit-prior --out``); a prior among them must pass its checks (CardError).
    """
    card = getattr(model, "card", None)
    if card is None or not hasattr(model, "encoder") or not hasattr(model, "decoder"):
        raise ExportError(f"expected an aeserve Autoencoder (with .card, .encoder, .decoder), "
                          f"got {type(model).__name__}")
    name, settings, root = export_target(card, name, repo, max_batch=max_batch, kind=kind, instances=instances,
                                         preferred_batch_sizes=preferred_batch_sizes,
                                         queue_delay_us=queue_delay_us, warmup=warmup)
    if not isinstance(fp16, bool):
        raise ExportError(f"fp16 must be True or False, got {fp16!r}")
    if quantize not in (None, "int8") or (quantize and fp16):
        raise ConfigError(f"quantize must be None or 'int8' (and not combined with fp16), got {quantize!r}")
    if max_psnr_drop_db is not None and not quantize:
        raise ConfigError("max_psnr_drop_db applies to quantize='int8' exports only")
    if quantize:
        from .quantize import check_max_drop

        check_max_drop(0.0 if max_psnr_drop_db is None else max_psnr_drop_db)

    named_card = export_card(card.with_extra(**dict(card_extra)) if card_extra else card, name, fp16)
    if card_extra:
        from ..prior import LatentPrior

        LatentPrior.from_card(named_card)  # fingerprint, factors, dim: CardError before any work
    model = cpu_copy(model)
    log.info("export %s: building the encoder and decoder graphs (fp16=%s)", name, fp16)
    enc, dec = export_graphs(model, name, fp16=fp16)
    reports = (check_parity(enc, model.encoder, max_batch=settings.max_batch),
               check_parity(dec, model.decoder, max_batch=settings.max_batch))
    log.info("export %s: parity gate passed (max abs diff %.2e)", name, max(r.max_abs_diff for r in reports))

    quant = None
    if quantize:
        enc, dec, quant, named_card = _int8(enc, dec, named_card, max_psnr_drop_db, calibration, gate_images)
    named_card = named_card.with_extra(export_id=pair_id(enc, dec))
    for graph in (enc, dec):
        write_card(graph.proto, named_card.to_dict(), graph.role)
    enc_name, dec_name = name + ENCODER_SUFFIX, name + DECODER_SUFFIX
    version = reserve_version(root, [enc_name, dec_name], version)
    files = {
        enc_name: (config_text(build_config(enc_name, enc, settings, named_card, version)), enc.serialize()),
        dec_name: (config_text(build_config(dec_name, dec, settings, named_card, version)), dec.serialize()),
    }
    written_version, onnx_paths = write_models(root, files, version=version)
    paths = {
        "encoder": onnx_paths[enc_name], "decoder": onnx_paths[dec_name],
        "encoder_config": root / enc_name / CONFIG_FILENAME, "decoder_config": root / dec_name / CONFIG_FILENAME,
    }
    exporter = "torchscript" if "torchscript" in (enc.exporter, dec.exporter) else "dynamo"
    log.info("export %s: wrote version %d of %s and %s in %s (%s exporter)", name, written_version,
             enc_name, dec_name, root, exporter)
    return ExportResult(name, written_version, paths, exporter, reports, fp16, quant)


def cpu_copy(model):
    """``model`` on the CPU in fp32 and eval mode: itself when it already is, else a copy.

    A model left on a GPU (or in float64) after training is exported from the copy; the
    caller's model keeps its device, dtype and mode. Raises ExportError if it cannot be copied.
    """
    import copy

    import torch

    try:
        tensors = list(model.parameters()) + list(model.buffers())
        if not model.training and all(t.device.type == "cpu" and t.dtype in (torch.float32, torch.int64, torch.bool)
                                      for t in tensors):
            return model
        clone = copy.deepcopy(model).to(device=torch.device("cpu"), dtype=torch.float32).eval()
    except Exception as e:  # noqa: BLE001 - torch raises many types (device errors, deepcopy)
        raise ExportError(f"cannot copy the model to the CPU for export: {type(e).__name__}: {e}") from e
    return clone


def _int8(enc: Graph, dec: Graph, card, max_drop, calibration, gate_images):
    """Quantized graphs and their card (precision int8, methods, measured PSNR drop); the
    caller writes the card into the graphs."""
    from .quantize import DEFAULT_MAX_PSNR_DROP_DB, quantize_pair

    bound = DEFAULT_MAX_PSNR_DROP_DB if max_drop is None else max_drop
    enc8, dec8, report = quantize_pair(enc, dec, card, calibration=calibration, gate_images=gate_images,
                                       max_psnr_drop_db=bound)
    card8 = card.with_extra(**{"export.precision": "int8",
                               "export.quantization": ",".join(f"{k}={v}" for k, v in report.methods.items()),
                               "export.int8_psnr_drop_db": round(report.drop_db, 4)})
    return enc8, dec8, report, card8


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
    if model.card.get("task") == "classifier":  # from `aeserve finetune`: one <name>_classifier model
        from .classifier import export_classifier

        return export_classifier(model, repo, name, **options)
    return export_model(model, repo, name, **options)
