"""Torch encoder/decoder -> two self-contained ONNX graphs with a symbolic batch axis.

    enc, dec = export_graphs(model, "mnist_vae", fp16=False)
    enc.proto            # onnx.ModelProto, input "x", outputs "mu","logvar" (vae) or "z"
    dec.output_names     # ("x_hat",)

In: an ``Autoencoder`` (eval mode is enforced during export), the model name (stored
in the card as ``aeserve.name``). Out: two ``Graph`` records whose bytes depend only on
the model and the library versions (``strip_provenance`` drops the exporting machine's
source paths and stack traces that torch.onnx records). Stride-2 ConvTranspose pairs (the
conv decoder) are rewritten exactly as phase-space Convs, which ONNX Runtime runs faster
(``aeserve.export.phase_conv``; the parity gate checks the result against torch). Raises
ExportError if torch.onnx fails with both exporters, the graph holds a random op, or ``onnx.checker``
rejects it. The dynamo exporter is used; the TorchScript exporter only as a fallback
(a ``UserWarning`` says so and ``Graph.exporter`` records which one ran).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import logging
import warnings
from dataclasses import dataclass
from typing import Iterator, Protocol

import onnx
import torch
from torch import nn

from ..card import ModelCard
from ..contract import tensor_names
from ..errors import ExportError
from .phase_conv import rewrite_transposed_conv_pairs

BATCH_DIM = "batch"
OPSET = 20
MAX_IR_VERSION = 10  # Triton 24.10's ONNX Runtime (1.19) reads IR <= 10 and opset <= 21
EXAMPLE_BATCH = 2  # not 0/1: torch.export would specialise those
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Graph:
    """One exported graph and its tensor contract (shapes without the batch axis)."""

    role: str                              # "encoder" | "decoder"
    proto: onnx.ModelProto
    input_name: str
    input_shape: tuple[int, ...]
    output_names: tuple[str, ...]
    output_shape: tuple[int, ...]          # every output has this shape
    exporter: str                          # "dynamo" | "torchscript"
    fp16: bool = False

    def serialize(self) -> bytes:
        return self.proto.SerializeToString()


def export_card(card: ModelCard, name: str, fp16: bool) -> ModelCard:
    """The card as exported: plus ``aeserve.name`` and ``aeserve.export.precision`` (fp32|fp16)."""
    return card.with_extra(**{"name": name, "export.precision": "fp16" if fp16 else "fp32"})


class _Half(nn.Module):
    """FP32 in / FP32 out around an FP16 copy of ``module``: the casts live in the graph."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.inner = copy.deepcopy(module).half().eval()

    def forward(self, x: torch.Tensor):
        y = self.inner(x.half())
        return tuple(t.float() for t in y) if isinstance(y, tuple) else y.float()


def export_graphs(model: nn.Module, name: str, *, fp16: bool = False) -> tuple[Graph, Graph]:
    """Export ``model.encoder`` and ``model.decoder``; both carry the card (with ``aeserve.name``)."""
    card = export_card(model.card, name, fp16)
    names = tensor_names(card)
    props = card.to_dict()
    gen = torch.Generator().manual_seed(0)  # not the global generator: the caller's stream stays as it was
    x = torch.rand(EXAMPLE_BATCH, *card.input_shape, generator=gen)
    z = torch.randn(EXAMPLE_BATCH, card.latent_dim, generator=gen)
    was_training = model.training
    model.eval()
    try:
        enc = _export_one("encoder", model.encoder, x, names["encoder_in"][0], names["encoder_out"],
                          (card.latent_dim,), props, fp16)
        dec = _export_one("decoder", model.decoder, z, names["decoder_in"][0], names["decoder_out"],
                          tuple(card.input_shape), props, fp16)
    finally:
        model.train(was_training)
    return enc, dec


def _export_one(role: str, module: nn.Module, example: torch.Tensor, input_name: str,
                output_names: tuple[str, ...], output_shape: tuple[int, ...],
                props: dict[str, str], fp16: bool) -> Graph:
    target = _Half(module).eval() if fp16 else module
    proto, exporter = _to_onnx(role, target, example, input_name, output_names)
    random_ops = find_random_ops(proto)
    if random_ops:
        raise ExportError(f"the {role} graph contains random ops {sorted(set(random_ops))}; graphs must be "
                          "deterministic (sampling belongs to the client)")
    proto.ir_version = min(proto.ir_version, MAX_IR_VERSION)
    rewrite_transposed_conv_pairs(proto)
    strip_provenance(proto)
    write_card(proto, props, role)
    if any(init.data_location == onnx.TensorProto.EXTERNAL for init in proto.graph.initializer):
        raise ExportError(f"the {role} graph references external data; expected one self-contained file")
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as e:  # onnx raises several types (ValidationError, InferenceError)
        raise ExportError(f"the exported {role} graph fails onnx.checker: {e}") from e
    return Graph(role, proto, input_name, tuple(example.shape[1:]), output_names, output_shape, exporter, fp16)


def _to_onnx(role: str, module: nn.Module, example: torch.Tensor, input_name: str,
             output_names: tuple[str, ...]) -> tuple[onnx.ModelProto, str]:
    """dynamo exporter first; TorchScript exporter as the fallback. Returns (proto, exporter)."""
    try:
        with _quiet():
            program = torch.onnx.export(
                module, (example,), None, dynamo=True, external_data=False, opset_version=OPSET,
                input_names=[input_name], output_names=list(output_names), verbose=False,
                dynamic_shapes=({0: torch.export.Dim(BATCH_DIM, min=1)},), optimize=True)
        return program.model_proto, "dynamo"
    except Exception as dynamo_error:  # noqa: BLE001 - any failure -> try the fallback, then wrap
        first = f"{type(dynamo_error).__name__}: {str(dynamo_error).splitlines()[0] if str(dynamo_error) else ''}"
    log.warning("dynamo ONNX export of the %s failed (%s); falling back to the TorchScript exporter", role, first)
    warnings.warn(f"dynamo ONNX export of the {role} failed ({first}); falling back to the TorchScript "
                  "exporter", UserWarning, stacklevel=3)
    buf = io.BytesIO()
    axes = {n: {0: BATCH_DIM} for n in (input_name, *output_names)}
    try:
        with _quiet():
            torch.onnx.export(module, (example,), buf, dynamo=False, opset_version=17,
                              input_names=[input_name], output_names=list(output_names),
                              dynamic_axes=axes, do_constant_folding=True)
    except Exception as e:  # noqa: BLE001
        raise ExportError(f"ONNX export of the {role} failed with both exporters: dynamo: {first}; "
                          f"torchscript: {type(e).__name__}: {e}") from e
    return onnx.load_from_string(buf.getvalue()), "torchscript"


class Serialized(Protocol):
    """Anything with ``serialize() -> bytes`` (a ``Graph``, or a wrapped loaded proto)."""

    def serialize(self) -> bytes: ...


def pair_id(encoder: Serialized, decoder: Serialized) -> str:
    """The export id of a pair: the first 32 hex digits of SHA-256 over both graphs' bytes
    (as exported, before the id is added). Equal graphs give equal ids on every machine."""
    digest = hashlib.sha256()
    for graph in (encoder, decoder):
        data = graph.serialize()
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()[:32]


def write_card(proto: onnx.ModelProto, props: dict[str, str], role: str) -> None:
    """Replace ``proto``'s ``metadata_props`` by the card ``props`` (sorted) and set its doc string."""
    del proto.metadata_props[:]
    for k, v in sorted(props.items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    proto.doc_string = f"aeserve {role} for {props.get('aeserve.name', '?')}"


def strip_provenance(proto: onnx.ModelProto) -> None:
    """Drop what the exporter records about the exporting machine: per-node, per-value and
    per-graph metadata (source file paths, stack traces, FX node text) and doc strings.
    The computation is untouched; the bytes then depend only on the model and the versions."""
    graphs = [proto.graph]
    for g in graphs:
        for node in g.node:
            for attr in node.attribute:
                graphs.extend([attr.g] if attr.type == onnx.AttributeProto.GRAPH else attr.graphs)
        for item in (*g.node, *g.input, *g.output, *g.value_info, *g.initializer):
            del item.metadata_props[:]
            item.doc_string = ""
        del g.metadata_props[:]
        g.doc_string = ""
    for f in proto.functions:
        for item in (*f.node, *f.value_info):
            del item.metadata_props[:]
            if hasattr(item, "doc_string"):
                item.doc_string = ""
        del f.metadata_props[:]
        f.doc_string = ""


def find_random_ops(proto: onnx.ModelProto) -> list[str]:
    """Op types of every ``Random*``/``Multinomial``/``Bernoulli`` node, subgraphs and functions included."""
    found: list[str] = []
    for node in _all_nodes(proto):
        if node.op_type.startswith("Random") or node.op_type in ("Multinomial", "Bernoulli"):
            found.append(node.op_type)
    return found


def _all_nodes(proto: onnx.ModelProto) -> Iterator[onnx.NodeProto]:
    stack = [proto.graph] + [f for f in proto.functions]
    while stack:
        g = stack.pop()
        for node in g.node:
            yield node
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    stack.append(attr.g)
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    stack.extend(attr.graphs)


def symbolic_batch(proto: onnx.ModelProto) -> dict[str, bool]:
    """For each graph input/output: is its first dim symbolic (a ``dim_param``, no fixed value)?"""
    out = {}
    for vi in (*proto.graph.input, *proto.graph.output):
        dims = vi.type.tensor_type.shape.dim
        out[vi.name] = bool(dims) and dims[0].HasField("dim_param") and not dims[0].HasField("dim_value")
    return out


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence torch.onnx's warnings and registration log noise (levels restored after;
    stdout is left alone: ``verbose=False`` already stops the exporter's progress prints)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
