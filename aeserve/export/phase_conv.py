"""Exact rewrite of stride-2 ConvTranspose pairs into phase-space convolutions.

    n = rewrite_transposed_conv_pairs(proto)     # in place; n = pairs rewritten (0: untouched)

ONNX Runtime's CPU ConvTranspose runs one small GEMM plus a col2im per image; its Conv
runs blocked direct convolutions (NCHWc). A ConvTranspose with kernel 4, stride 2 and
padding 1 is, per output phase, an ordinary 2x2 convolution (sub-pixel convolution):
output pixel (2m + a, 2n + b) only sees input rows {m-1, m} (a = 0, kernel taps 3, 1) or
{m, m+1} (a = 1, taps 2, 0), and the same for columns. So the first ConvTranspose
``A`` of a pair becomes four 2x2 Convs, one per phase (a, b), with the same
multiply-adds as ``A``. The elementwise activation between the two (SiLU, ...) is
applied to each phase as it is. The second ConvTranspose ``B`` then reads the four
phase maps directly: its output, seen at phase factor 4 (pixel (4t + r, 4s + q)), is
the sum over the four input phases of one 2x2 Conv each, whose output channels are
the 16 output phases times ``B``'s channels; a final DepthToSpace (block 4) interleaves
them. ``B`` does 4x its own multiply-adds in this form (each output phase uses one of
the two taps per axis), which is cheap next to ``A`` when ``B`` is the small last
layer. No interleaving (DepthToSpace) happens between the layers.

The graph computes the same function (the export parity gate checks it against torch);
only rounding differs. Rewritten: a ``ConvTranspose(kernel 4, stride 2, pads 1,
group 1, dilation 1)`` with float32 initializer weights whose output feeds only
elementwise ops (``ELEMENTWISE``; other inputs scalars) that lead only into a second
such ConvTranspose. Anything else is left as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

__all__ = ["rewrite_transposed_conv_pairs", "rewritten_nodes", "is_second_layer", "ELEMENTWISE", "PREFIX",
           "SECOND_WORK"]

PREFIX = "convt_phase"   # every node and initializer the rewrite adds is named PREFIX<pair>_...
SECOND_WORK = 4          # multiply-adds of the second layer's phase Convs over the ConvTranspose they replace
_SECOND_NAME = re.compile(PREFIX + r"\d+_[01][01]_conv2")   # the names _phase_nodes gives them

ELEMENTWISE = frozenset({"Sigmoid", "Mul", "Add", "Sub", "Div", "Relu", "Tanh", "LeakyRelu", "Elu", "Softplus",
                         "HardSigmoid", "HardSwish", "Gelu", "Neg", "Exp"})
# one axis of the first ConvTranspose, per output phase a: (kernel taps for the 2-window, pads (begin, end))
_FIRST = {0: ((3, 1), (1, 0)), 1: ((2, 0), (0, 1))}
# one axis of the second, per input phase: pads, and (output phase r of 4, window offset d, kernel tap) triples
_SECOND = {0: ((0, 1), ((0, 0, 1), (1, 0, 2), (2, 0, 3), (3, 1, 0))),
           1: ((1, 0), ((0, 0, 3), (1, 1, 0), (2, 1, 1), (3, 1, 2)))}


@dataclass
class _Pair:
    first: onnx.NodeProto
    between: list[onnx.NodeProto]      # elementwise nodes from first's output to second's input, graph order
    second: onnx.NodeProto


def rewrite_transposed_conv_pairs(proto: onnx.ModelProto) -> int:
    """Rewrite every qualifying ConvTranspose pair of ``proto``'s main graph in place (module
    doc); returns how many pairs were rewritten. Node and initializer names are derived from
    the pair's position, so equal graphs give equal bytes. Raises nothing for graphs it
    does not recognise: they are left unchanged."""
    graph = proto.graph
    inits = {t.name: t for t in graph.initializer}
    pairs = _find_pairs(graph, inits)
    if not pairs:
        return 0
    removed: set[int] = set()
    replace: dict[int, list[onnx.NodeProto]] = {}
    new_inits: list[onnx.TensorProto] = []
    for k, pair in enumerate(pairs):
        nodes, tensors = _phase_nodes(pair, inits, f"{PREFIX}{k}")
        removed.update(id(n) for n in (pair.first, *pair.between))
        replace[id(pair.second)] = nodes
        new_inits += tensors
    out: list[onnx.NodeProto] = []
    for node in graph.node:
        if id(node) in replace:
            out += replace[id(node)]
        elif id(node) not in removed:
            out.append(node)
    kept = [onnx.NodeProto.FromString(n.SerializeToString()) for n in out]
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for n in graph.node for name in n.input}
    still = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(still + [t for t in new_inits if t.name in used])
    del graph.value_info[:]  # stale shapes of removed values; ORT infers what it needs
    return len(pairs)


def rewritten_nodes(proto: onnx.ModelProto) -> list[str]:
    """Names of the nodes ``rewrite_transposed_conv_pairs`` added to ``proto`` (empty if none)."""
    return [n.name for n in proto.graph.node if n.name.startswith(PREFIX)]


def is_second_layer(name: str) -> bool:
    """Whether node ``name`` is one of the second layer's phase Convs (``SECOND_WORK`` times the
    multiply-adds of that layer's ConvTranspose; FLOP counts of the function divide by it)."""
    return _SECOND_NAME.fullmatch(name) is not None


def _qualifies(node: onnx.NodeProto, inits: dict[str, onnx.TensorProto]) -> bool:
    if node.op_type != "ConvTranspose" or node.domain not in ("", "ai.onnx"):
        return False
    a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
    if (list(a.get("kernel_shape", [4, 4])) != [4, 4] or list(a.get("strides", [1, 1])) != [2, 2]
            or list(a.get("pads", [0, 0, 0, 0])) != [1, 1, 1, 1] or list(a.get("dilations", [1, 1])) != [1, 1]
            or a.get("group", 1) != 1 or any(a.get("output_padding", [0, 0])) or "output_shape" in a
            or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")):
        return False
    w = inits.get(node.input[1]) if len(node.input) > 1 else None
    if w is None or w.data_type != onnx.TensorProto.FLOAT or len(w.dims) != 4 or list(w.dims[2:]) != [4, 4]:
        return False
    return len(node.input) < 3 or not node.input[2] or node.input[2] in inits


def _find_pairs(graph: onnx.GraphProto, inits: dict[str, onnx.TensorProto]) -> list[_Pair]:
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    order = {id(n): i for i, n in enumerate(graph.node)}
    pairs: list[_Pair] = []
    taken: set[int] = set()
    for node in graph.node:
        if id(node) in taken or not _qualifies(node, inits):
            continue
        pair = _pair_from(node, consumers, inits, outputs)
        if pair is None or id(pair.second) in taken:
            continue
        pair.between.sort(key=lambda n: order[id(n)])
        taken.update(id(n) for n in (pair.first, *pair.between, pair.second))
        pairs.append(pair)
    return pairs


def _pair_from(first: onnx.NodeProto, consumers: dict[str, list[onnx.NodeProto]],
               inits: dict[str, onnx.TensorProto], outputs: set[str]) -> _Pair | None:
    """The elementwise region after ``first`` and the ConvTranspose it leads into, or None."""
    values = {first.output[0]}
    between: list[onnx.NodeProto] = []
    seconds: list[onnx.NodeProto] = []
    frontier = [first.output[0]]
    while frontier:
        value = frontier.pop()
        if value in outputs:
            return None
        for c in consumers.get(value, []):
            if c.op_type == "ConvTranspose" and c.input[0] == value and value not in c.input[1:]:
                if all(c is not s for s in seconds):
                    seconds.append(c)
            elif c.op_type in ELEMENTWISE and c.domain in ("", "ai.onnx") and len(c.output) == 1:
                if all(c is not b for b in between):
                    between.append(c)
                    values.add(c.output[0])
                    frontier.append(c.output[0])
            else:
                return None
    if len(seconds) != 1 or not _qualifies(seconds[0], inits):
        return None
    second = seconds[0]
    w1, w2 = inits[first.input[1]], inits[second.input[1]]
    if w2.dims[0] != w1.dims[1]:
        return None
    for node in between:   # every other input must come from the region or be a scalar constant
        for name in node.input:
            if name not in values and not (name in inits and int(np.prod(inits[name].dims)) == 1):
                return None
    return _Pair(first, between, second)


def _phase_nodes(pair: _Pair, inits: dict[str, onnx.TensorProto], prefix: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """The replacement nodes (in a valid order) and their new initializers."""
    first, second = pair.first, pair.second
    w1 = numpy_helper.to_array(inits[first.input[1]])            # (C_in, C_mid, 4, 4)
    w2 = numpy_helper.to_array(inits[second.input[1]])           # (C_mid, C_out, 4, 4)
    c_mid, c_out = w1.shape[1], w2.shape[1]
    b1 = _bias(first, inits, c_mid)
    b2 = _bias(second, inits, c_out)
    tensors = [numpy_helper.from_array(b1, f"{prefix}_b1"), numpy_helper.from_array(np.tile(b2, 16), f"{prefix}_b2")]
    nodes: list[onnx.NodeProto] = []
    acc = ""
    for a in (0, 1):
        for b in (0, 1):
            tag = f"{prefix}_{a}{b}"
            (taps_h, pads_h), (taps_w, pads_w) = _FIRST[a], _FIRST[b]
            k1 = np.ascontiguousarray(w1[:, :, list(taps_h)][:, :, :, list(taps_w)].transpose(1, 0, 2, 3))
            tensors.append(numpy_helper.from_array(k1.astype(np.float32), f"{tag}_w1"))
            phase = f"{tag}_conv1"
            nodes.append(helper.make_node("Conv", [first.input[0], f"{tag}_w1", f"{prefix}_b1"], [phase],
                                          name=phase, kernel_shape=[2, 2], pads=[pads_h[0], pads_w[0], pads_h[1], pads_w[1]]))
            rename = {first.output[0]: phase}
            for node in pair.between:
                clone = onnx.NodeProto.FromString(node.SerializeToString())
                clone.name = f"{tag}_{node.name or node.output[0]}"
                for i, name in enumerate(clone.input):
                    clone.input[i] = rename.get(name, name)
                rename[node.output[0]] = clone.output[0] = f"{tag}_{node.output[0]}"
                nodes.append(clone)
            (pads2_h, uses_h), (pads2_w, uses_w) = _SECOND[a], _SECOND[b]
            k2 = np.zeros((16 * c_out, c_mid, 2, 2), np.float32)
            for r, dh, kh in uses_h:
                for q, dw, kw in uses_w:
                    k2[(4 * r + q) * c_out:(4 * r + q + 1) * c_out, :, dh, dw] = w2[:, :, kh, kw].T
            tensors.append(numpy_helper.from_array(k2, f"{tag}_w2"))
            inputs = [rename[second.input[0]], f"{tag}_w2"] + ([f"{prefix}_b2"] if not acc else [])
            part = f"{tag}_conv2"
            nodes.append(helper.make_node("Conv", inputs, [part], name=part, kernel_shape=[2, 2],
                                          pads=[pads2_h[0], pads2_w[0], pads2_h[1], pads2_w[1]]))
            if acc:   # two-input Sum: ONNX Runtime accumulates it into the Conv's output buffer
                nodes.append(helper.make_node("Sum", [acc, part], [f"{tag}_sum"], name=f"{tag}_sum"))
                part = f"{tag}_sum"
            acc = part
    nodes.append(helper.make_node("DepthToSpace", [acc], [second.output[0]], name=f"{prefix}_interleave",
                                  blocksize=4, mode="DCR"))
    return nodes, tensors


def _bias(node: onnx.NodeProto, inits: dict[str, onnx.TensorProto], channels: int) -> np.ndarray:
    if len(node.input) > 2 and node.input[2]:
        return numpy_helper.to_array(inits[node.input[2]]).astype(np.float32)
    return np.zeros(channels, np.float32)
