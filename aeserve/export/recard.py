"""A new version of a model with card entries added: same graphs, new card.

    from aeserve.export.recard import write_card_version
    version = write_card_version("model_repository", "mnist_vae", {"prior": ..., "prior.sha256": ...})

Reads the newest version of ``<name>_encoder`` and ``<name>_decoder``, adds (or replaces)
the given ``aeserve.*`` entries in the card (checked to parse), writes that card, with a
new export id, into each graph's ``metadata_props`` and each ``config.pbtxt``'s
``parameters``, and writes both as the next version with the export writer (atomic;
nothing is overwritten; the configs serve exactly the new version). The graphs'
weights and nodes are not touched. Needs the ``onnx`` package (``train`` extra).
Raises ModelNotFoundError, RepositoryError, CardError (the new card is not valid) and
ExportError (the files cannot be read or written).
"""

from __future__ import annotations

import os
from typing import Mapping

from ..card import EXPORT_ID as EXPORT_ID_KEY
from ..card import PREFIX, ModelCard
from ..errors import CardError, ExportError
from ..repository import Repository
from .onnx_graphs import pair_id, write_card
from .triton_config import config_text
from .writer import check_repository_path, reserve_version, write_models


class _Bytes:
    """What ``pair_id`` needs of a graph: its serialized bytes."""

    def __init__(self, proto) -> None:
        self.proto = proto

    def serialize(self) -> bytes:
        return self.proto.SerializeToString()


def write_card_version(repo: str | os.PathLike[str], name: str, entries: Mapping[str, str]) -> int:
    """Write ``name``'s newest graphs again as the next version with ``entries`` in its card; return the version.

    The pair gets a new ``aeserve.export_id`` (over the re-carded graphs) and configs that
    serve exactly the new version."""
    import onnx

    root = check_repository_path(repo)
    model = Repository(root).model(name)
    bad = [k for k, v in entries.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise CardError(f"card entries must map str to str; bad keys: {bad}")
    props = {**model.card.to_dict(), **{PREFIX + k: v for k, v in entries.items()}}
    props.pop(PREFIX + EXPORT_ID_KEY, None)
    card = ModelCard.from_dict(props)
    parts = ((model.encoder_name, model.encoder_config, model.encoder_path(), "encoder"),
             (model.decoder_name, model.decoder_config, model.decoder_path(), "decoder"))
    protos = []
    for _, _, path, role in parts:
        try:
            proto = onnx.load_model_from_string(path.read_bytes())
        except Exception as e:  # OSError, or onnx's own DecodeError
            raise ExportError(f"cannot read {path}: {e}") from None
        write_card(proto, card.to_dict(), role)
        protos.append(proto)
    card = card.with_extra(**{EXPORT_ID_KEY: pair_id(_Bytes(protos[0]), _Bytes(protos[1]))})
    version = reserve_version(root, [p[0] for p in parts])
    files = {}
    for (triton_name, cfg, _, role), proto in zip(parts, protos):
        write_card(proto, card.to_dict(), role)
        new_cfg = type(cfg)()
        new_cfg.CopyFrom(cfg)
        new_cfg.parameters.clear()
        for key, value in card.to_dict().items():
            new_cfg.parameters[key].string_value = value
        new_cfg.version_policy.specific.ClearField("versions")
        new_cfg.version_policy.specific.versions.append(version)
        files[triton_name] = (config_text(new_cfg), proto.SerializeToString())
    written, _ = write_models(root, files, version=version)
    return written
