"""Hand-built ONNX restoration models and a classifier with known answers (no torch), written
as a Triton model repository, for the tests of restoration, anomaly maps and features.

    restoration_repository(root)   # t_inpaint, t_sr (x2, x4), t_color (3x16x16): identity graphs
                                   # whose cards say what they restore; t_ident_classifier: x -> probs

Identity graphs make the answers known: ``inpaint`` fills the hole with the card's fill
value, ``upscale`` returns the nearest-neighbour upsampling, ``colorize`` the grey copied
into each channel. The classifier is softmax(flatten(x) @ W) with a seeded W (``CLASSIFIER_W``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from eval_fixtures import _config, _graph, _tensor
from onnx import helper, numpy_helper

from aeserve.card import ModelCard

CLASSES = ["zero", "one", "two"]
CLASSIFIER_W = np.random.default_rng(0).standard_normal((784, len(CLASSES))).astype(np.float32) * 0.1
RESTORERS = {
    "t_inpaint": ((1, 28, 28), {"restore.task": "inpaint", "restore.fill": 0.5}),
    "t_sr": ((1, 28, 28), {"restore.task": "upscale", "restore.factors": [2, 4],
                           "restore.low_shapes": [[1, 14, 14], [1, 7, 7]]}),
    "t_color": ((3, 16, 16), {"restore.task": "colorize"}),
}


def _write(root: Path, triton: str, graph, inputs, outputs, card: ModelCard, max_batch: int) -> None:
    d = Path(root) / triton
    (d / "1").mkdir(parents=True, exist_ok=True)
    (d / "1" / "model.onnx").write_bytes(graph.SerializeToString())
    (d / "config.pbtxt").write_text(_config(triton, inputs, outputs, card, max_batch))


def _identity(root: Path, name: str, shape: tuple[int, ...], extra: dict, max_batch: int) -> None:
    d = math.prod(shape)
    card = ModelCard("dae", "mlp", shape, d, "bernoulli", "synthetic", {"name": name}).with_extra(**extra)
    enc = _graph([helper.make_node("Flatten", ["x"], ["z"], axis=1)], [_tensor("x", shape)], [_tensor("z", (d,))],
                 [], "enc")
    dec = _graph([helper.make_node("Reshape", ["z", "shape"], ["x_hat"])], [_tensor("z", (d,))],
                 [_tensor("x_hat", shape)], [numpy_helper.from_array(np.array([-1, *shape], np.int64), "shape")],
                 "dec")
    _write(root, f"{name}_encoder", enc, [("x", shape)], [("z", (d,))], card, max_batch)
    _write(root, f"{name}_decoder", dec, [("z", (d,))], [("x_hat", shape)], card, max_batch)


def write_classifier(root: Path, name: str, max_batch: int = 16) -> None:
    """``<name>_classifier``: probs = softmax(flatten(x) @ CLASSIFIER_W), classes CLASSES."""
    card = ModelCard("vae", "mlp", (1, 28, 28), 16, "bernoulli", "synthetic", {"name": name}).with_extra(
        task="classifier", class_names=CLASSES, **{"finetune.labels": 30, "finetune.mode": "probe"})
    g = _graph([helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("MatMul", ["f", "w"], ["l"]),
                helper.make_node("Softmax", ["l"], ["probs"], axis=1)],
               [_tensor("x", (1, 28, 28))], [_tensor("probs", (len(CLASSES),))],
               [numpy_helper.from_array(CLASSIFIER_W, "w")], "clf")
    _write(root, f"{name}_classifier", g, [("x", (1, 28, 28))], [("probs", (len(CLASSES),))], card, max_batch)


def restoration_repository(root: Path, max_batch: int = 16) -> Path:
    """Write RESTORERS (identity graphs) and ``t_ident_classifier`` into ``root``; return it."""
    for name, (shape, extra) in RESTORERS.items():
        _identity(root, name, shape, {k: v if isinstance(v, (int, float, str)) else json.dumps(v)
                                      for k, v in extra.items()}, max_batch)
    write_classifier(root, "t_ident")
    return root
