"""Hand-built ONNX models with known answers, written as a Triton model repository (no torch).

    write_identity_ae(root, "ident")          # reconstruct(x) == x exactly (latent = all pixels)
    write_prior_vae(root, "prior", p=0.5)     # mu = 0, logvar = 0 (posterior == prior), decoder = p
    write_constant_ae(root, "const", image)   # decoder ignores z and returns ``image``

Used by test_evaluate.py and test_cli_eval.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from google.protobuf import text_format
from onnx import TensorProto, helper, numpy_helper
from tritonclient.grpc import model_config_pb2

from aeserve.card import ModelCard

SHAPE = (1, 28, 28)
D = 784


def _graph(nodes, inputs, outputs, inits, name) -> onnx.ModelProto:
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def _tensor(name: str, dims) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", *dims])


def _config(name: str, inputs, outputs, card: ModelCard, max_batch: int) -> str:
    cfg = model_config_pb2.ModelConfig(name=name, backend="onnxruntime", max_batch_size=max_batch)
    for n, dims in inputs:
        cfg.input.add(name=n, data_type=model_config_pb2.TYPE_FP32, dims=list(dims))
    for n, dims in outputs:
        cfg.output.add(name=n, data_type=model_config_pb2.TYPE_FP32, dims=list(dims))
    for k, v in card.to_dict().items():
        cfg.parameters[k].string_value = v
    return text_format.MessageToString(cfg)


def write_model(root: Path, name: str, card: ModelCard, encoder: onnx.ModelProto, decoder: onnx.ModelProto,
                max_batch: int = 256) -> None:
    outs = [("mu", (card.latent_dim,)), ("logvar", (card.latent_dim,))] if card.is_vae else [("z", (card.latent_dim,))]
    parts = {"encoder": (encoder, [("x", SHAPE)], outs), "decoder": (decoder, [("z", (card.latent_dim,))], [("x_hat", SHAPE)])}
    for part, (graph, ins, outs_) in parts.items():
        d = Path(root) / f"{name}_{part}"
        (d / "1").mkdir(parents=True, exist_ok=True)
        (d / "1" / "model.onnx").write_bytes(graph.SerializeToString())
        (d / "config.pbtxt").write_text(_config(f"{name}_{part}", ins, outs_, card, max_batch))


def _card(family: str, latent: int, likelihood: str = "bernoulli", dataset: str = "mnist") -> ModelCard:
    return ModelCard(family, "mlp", SHAPE, latent, likelihood, dataset, {"name": "fake"})


def _flatten_encoder(out_name: str = "z") -> onnx.ModelProto:
    return _graph([helper.make_node("Flatten", ["x"], [out_name], axis=1)], [_tensor("x", SHAPE)],
                  [_tensor(out_name, (D,))], [], "enc")


def _reshape_decoder() -> onnx.ModelProto:
    shape = numpy_helper.from_array(np.array([-1, *SHAPE], np.int64), "shape")
    return _graph([helper.make_node("Reshape", ["z", "shape"], ["x_hat"])], [_tensor("z", (D,))],
                  [_tensor("x_hat", SHAPE)], [shape], "dec")


def write_identity_ae(root: Path, name: str, dataset: str = "mnist") -> None:
    """encoder = flatten, decoder = reshape: an exact identity with a 784-d latent."""
    write_model(root, name, _card("ae", D, dataset=dataset), _flatten_encoder(), _reshape_decoder())


def write_constant_ae(root: Path, name: str, image: np.ndarray, latent: int = 4, dataset: str = "mnist") -> None:
    """Decoder returns ``image`` whatever z is (z * 0 + image); encoder z = 0."""
    w_enc = numpy_helper.from_array(np.zeros((D, latent), np.float32), "w_enc")
    enc = _graph([helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("MatMul", ["f", "w_enc"], ["z"])],
                 [_tensor("x", SHAPE)], [_tensor("z", (latent,))], [w_enc], "enc")
    w = numpy_helper.from_array(np.zeros((latent, D), np.float32), "w")
    b = numpy_helper.from_array(np.asarray(image, np.float32).reshape(D), "b")
    dec = _graph([helper.make_node("MatMul", ["z", "w"], ["zw"]), helper.make_node("Add", ["zw", "b"], ["flat"]),
                  helper.make_node("Reshape", ["flat", "shape"], ["x_hat"])],
                 [_tensor("z", (latent,))], [_tensor("x_hat", SHAPE)],
                 [w, b, numpy_helper.from_array(np.array([-1, *SHAPE], np.int64), "shape")], "dec")
    write_model(root, name, _card("ae", latent, dataset=dataset), enc, dec)


def write_prior_vae(root: Path, name: str, p: float = 0.5, latent: int = 3, likelihood: str = "bernoulli") -> None:
    """Encoder: mu = 0, logvar = 0 for every x; decoder: x_hat = p everywhere."""
    w0 = numpy_helper.from_array(np.zeros((D, latent), np.float32), "w0")
    enc = _graph([helper.make_node("Flatten", ["x"], ["f"], axis=1),
                  helper.make_node("MatMul", ["f", "w0"], ["mu"]), helper.make_node("MatMul", ["f", "w0"], ["logvar"])],
                 [_tensor("x", SHAPE)], [_tensor("mu", (latent,)), _tensor("logvar", (latent,))], [w0], "enc")
    w = numpy_helper.from_array(np.zeros((latent, D), np.float32), "w")
    b = numpy_helper.from_array(np.full(D, p, np.float32), "b")
    dec = _graph([helper.make_node("MatMul", ["z", "w"], ["zw"]), helper.make_node("Add", ["zw", "b"], ["flat"]),
                  helper.make_node("Reshape", ["flat", "shape"], ["x_hat"])],
                 [_tensor("z", (latent,))], [_tensor("x_hat", SHAPE)],
                 [w, b, numpy_helper.from_array(np.array([-1, *SHAPE], np.int64), "shape")], "dec")
    write_model(root, name, _card("vae", latent, likelihood), enc, dec)


def add_unit_prior(root: Path, name: str, latent: int = 4) -> None:
    """Give model ``name`` a fitted-prior card (one N(0, I) component over ``latent`` dims,
    calibration mean 0 / std 1 for both terms) as its next version, so that the "density"
    and "combined" scores run on it."""
    import json

    from aeserve.export.recard import write_card_version
    from aeserve.prior import CALIBRATION_KEY, LatentPrior

    prior = LatentPrior(np.ones(1), np.zeros((1, latent)), np.eye(latent)[None])
    calibration = json.dumps({"nll": [0.0, 1.0], "log_mse": [0.0, 1.0], "n": 1})
    write_card_version(root, name, {**prior.card_entries(), CALIBRATION_KEY: calibration})
