"""A new version of a model with card entries added: same graphs, new card.

    from aeserve.export.recard import write_card_version
    version = write_card_version("model_repository", "mnist_vae", {"prior": ..., "prior.sha256": ...})

Reads the newest version of ``<name>_encoder`` and ``<name>_decoder``, adds (or replaces)
the given ``aeserve.*`` entries in the card, writes that card into each graph's
``metadata_props`` and each ``config.pbtxt``'s ``parameters``, checks the resulting card parses, and writes both as
the next version with the export writer (atomic; nothing is overwritten). The graphs'
weights and nodes are not touched. Needs the ``onnx`` package (``train`` extra).
Raises ModelNotFoundError, RepositoryError, CardError (the new card is not valid) and
ExportError (the files cannot be read or written).
"""

from __future__ import annotations

import os
from typing import Mapping

from ..card import PREFIX, ModelCard
from ..errors import CardError, ExportError
from ..repository import Repository
from .onnx_graphs import write_card
from .triton_config import config_text
from .writer import check_repository_path, write_models


def write_card_version(repo: str | os.PathLike[str], name: str, entries: Mapping[str, str]) -> int:
    """Write ``name``'s newest graphs again as the next version with ``entries`` in its card; return the version."""
    import onnx

    root = check_repository_path(repo)
    model = Repository(root).model(name)
    bad = [k for k, v in entries.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise CardError(f"card entries must map str to str; bad keys: {bad}")
    new_card = ModelCard.from_dict({**model.card.to_dict(), **{PREFIX + k: v for k, v in entries.items()}})
    files = {}
    for triton_name, cfg, path in ((model.encoder_name, model.encoder_config, model.encoder_path()),
                                   (model.decoder_name, model.decoder_config, model.decoder_path())):
        try:
            proto = onnx.load_model_from_string(path.read_bytes())
        except (OSError, Exception) as e:  # onnx raises its own DecodeError
            raise ExportError(f"cannot read {path}: {e}") from None
        write_card(proto, new_card.to_dict(), triton_name.rsplit("_", 1)[-1])
        new_cfg = type(cfg)()
        new_cfg.CopyFrom(cfg)
        for key, value in new_card.to_dict().items():
            new_cfg.parameters[key].string_value = value
        files[triton_name] = (config_text(new_cfg), proto.SerializeToString())
    version, _ = write_models(root, files)
    return version
