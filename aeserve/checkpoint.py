"""Checkpoints: one file holding a model's weights and its model card, as plain data only.

    from aeserve import checkpoint
    checkpoint.save(model, "vae.pt")          # atomic: temp file in the same dir + os.replace
    model = checkpoint.load("vae.pt")         # Autoencoder in eval mode, card attached
                                              # (a finetune classifier: aeserve.finetune.ClassifierModel)
    card = checkpoint.read_card("vae.pt")     # just the ModelCard

The file is ``torch.save`` of a dict of plain data (str, int, dict, tensors)::

    {"format": "aeserve-checkpoint", "format_version": 1,
     "card": {str: str},                       # ModelCard.to_dict()
     "encoder": state_dict, "decoder": state_dict,
     "sha256": hex digest over the card and every tensor}

It is read ONLY with ``torch.load(..., weights_only=True)``: arbitrary pickled objects
are refused, never executed. Every problem (missing, truncated, foreign, other format
version, corrupted, weights that do not fit the card) raises ``CheckpointError``
with a one-line message. The SHA-256 is not keyed: it detects a corrupted or edited file
(disk, transfer, a stray write), not a deliberate forgery, which can recompute it.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any, Mapping, cast

import torch

from .card import ModelCard
from .errors import AeserveError, CheckpointError, DataError
from .fileio import write_bytes_atomic

FORMAT = "aeserve-checkpoint"
FORMAT_VERSION = 1

__all__ = ["FORMAT", "FORMAT_VERSION", "save", "load", "read_card", "digest"]


def digest(card: Mapping[str, str], encoder: Mapping[str, torch.Tensor],
           decoder: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 (hex) over the card entries and every tensor's name, dtype, shape and bytes.

    ``digest(card.to_dict(), enc.state_dict(), dec.state_dict()) -> "3fa2..."``. Order of
    insertion does not matter (keys are sorted).
    """
    h = hashlib.sha256()
    for key in sorted(card):
        h.update(f"card\0{key}\0{card[key]}\0".encode())
    for part, state in (("encoder", encoder), ("decoder", decoder)):
        for name in sorted(state):
            t = state[name].detach().to("cpu").contiguous()
            h.update(f"{part}\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _plain_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()}


def save(model: Any, path: str | os.PathLike) -> Path:
    """Write ``model`` (an ``aeserve.models.Autoencoder``) to ``path`` atomically; return the path.

    The parent directory is created if needed. The file is serialised in memory, then
    written with ``aeserve.fileio.write_bytes_atomic`` (temp file in the same directory,
    fsync, ``os.replace``), so an interrupt (Ctrl-C included) or a crash leaves either
    the old file or none, never a truncated one.
    Raises CheckpointError if the file cannot be written.
    """
    path = Path(path)
    if not all(hasattr(model, a) for a in ("card", "encoder", "decoder")):
        raise CheckpointError(f"cannot save a {type(model).__name__}; expected an aeserve.models.Autoencoder")
    card = model.card.to_dict()
    encoder, decoder = _plain_state(model.encoder), _plain_state(model.decoder)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "card": card,
        "encoder": encoder,
        "decoder": decoder,
        "sha256": digest(card, encoder, decoder),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    try:
        return write_bytes_atomic(path, buffer.getvalue())
    except DataError as e:
        raise CheckpointError(f"cannot write checkpoint: {e}") from e


def _read(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load and verify the raw payload (structure, version, checksum). Raises CheckpointError."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}; expected a file written by `aeserve train --out`")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a file; expected a file written by `aeserve train --out`")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"checkpoint {path} is truncated or not a torch zip file; expected a complete aeserve checkpoint"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        culprit = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        what = f" (found {culprit.group(1)})" if culprit else ""
        raise CheckpointError(
            f"checkpoint {path} holds objects other than plain data and tensors{what}; refusing to unpickle "
            "it (aeserve checkpoints are plain data loaded with weights_only=True)"
        ) from e
    except Exception as e:  # torch/zip/pickle internals: corrupt member, bad record, ...
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointError(
            f"checkpoint {path} is corrupt ({type(e).__name__}: {first[:120]}); expected a complete aeserve checkpoint"
        ) from e
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an aeserve checkpoint (no format {FORMAT!r} marker)")
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format_version {version!r}; this aeserve reads version {FORMAT_VERSION} "
            "(retrain, or use the aeserve version that wrote it)"
        )
    card, enc, dec = raw.get("card"), raw.get("encoder"), raw.get("decoder")
    if not (isinstance(card, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in card.items())):
        raise CheckpointError(f"checkpoint {path} is malformed: 'card' must be a map of strings")
    for part, state in (("encoder", enc), ("decoder", dec)):
        if not (isinstance(state, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                for k, v in state.items())):
            raise CheckpointError(f"checkpoint {path} is malformed: {part!r} must be a map of tensors")
    if raw.get("sha256") != digest(card, cast(dict, enc), cast(dict, dec)):
        raise CheckpointError(f"checkpoint {path} failed its checksum: the file is corrupted (its card or weights "
                              "changed after saving); re-save or re-download it")
    return raw


def read_card(path: str | os.PathLike) -> ModelCard:
    """The verified ``ModelCard`` stored in a checkpoint. Raises CheckpointError."""
    return _card(_read(path), path)


def _card(raw: dict[str, Any], path: str | os.PathLike) -> ModelCard:
    try:
        return ModelCard.from_dict(raw["card"])
    except AeserveError as e:
        raise CheckpointError(f"checkpoint {path} has an invalid model card: {e}") from e


def load(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """Rebuild the ``Autoencoder`` saved at ``path``, in eval mode, with ``.card`` attached.

    ``map_location`` ("cpu", "cuda", a torch.device) is where the tensors and the model go.
    The caller's global torch RNG is left as it was. Raises CheckpointError (see module
    doc), including when the weights do not fit the architecture the card describes.
    """
    from .models import build_model

    if isinstance(map_location, (str, torch.device)):
        try:
            target = torch.device(map_location)
        except (RuntimeError, TypeError):
            raise CheckpointError(f"unknown map_location {map_location!r}; expected 'cpu', 'cuda' or 'cuda:N'") from None
        if target.type == "cuda" and not torch.cuda.is_available():
            raise CheckpointError(f"cannot load {path} onto {map_location!r}: CUDA is not available here; use 'cpu'")
    raw = _read(path, map_location)
    card = _card(raw, path)
    try:
        if card.get("task") == "classifier":  # `aeserve finetune`: encoder + head (in the decoder slot)
            from .finetune import build_classifier_model

            model = build_classifier_model(card)
        else:
            with torch.random.fork_rng(devices=[]):  # the random init is overwritten: keep the caller's stream
                model = build_model(card)
    except AeserveError as e:
        raise CheckpointError(f"checkpoint {path} describes a model this aeserve cannot build: {e}") from e
    for part in ("encoder", "decoder"):
        try:
            getattr(model, part).load_state_dict(raw[part], strict=True)
        except RuntimeError as e:
            detail = " ".join(str(e).split())
            raise CheckpointError(
                f"checkpoint {path}: {part} weights do not match the architecture in its card "
                f"({card.family}/{card.arch}, latent {card.latent_dim}, input {card.input_shape}): {detail[:300]}"
            ) from e
    if isinstance(map_location, (str, torch.device)):
        model.to(torch.device(map_location))
    return model.eval()
