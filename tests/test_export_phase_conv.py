"""phase_conv: stride-2 ConvTranspose pairs rewritten as phase-space Convs compute the same function."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch.nn import functional as F

from aeserve.card import ModelCard
from aeserve.export.onnx_graphs import export_graphs
from aeserve.export.phase_conv import PREFIX, is_second_layer, rewrite_transposed_conv_pairs, rewritten_nodes
from aeserve.models import build_model
from aeserve.ort_session import cpu_session


def convt(name: str, x: str, y: str, w: np.ndarray, b: np.ndarray | None, inits: list, **attrs) -> onnx.NodeProto:
    inits.append(numpy_helper.from_array(w, f"{name}_w"))
    ins = [x, f"{name}_w"]
    if b is not None:
        inits.append(numpy_helper.from_array(b, f"{name}_b"))
        ins.append(f"{name}_b")
    params = {"kernel_shape": [4, 4], "strides": [2, 2], "pads": [1, 1, 1, 1], **attrs}
    return helper.make_node("ConvTranspose", ins, [y], name=name, **params)


def chain(channels=(3, 5, 2), hw=(5, 3), bias=True, seed=0, extra_output=False, between="silu", **attrs):
    """x -> ConvT -> (SiLU) -> ConvT [-> SiLU -> ConvT ...] -> Sigmoid -> y, random weights."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    value = "x"
    for i, (a, b) in enumerate(zip(channels[:-1], channels[1:])):
        w = rng.standard_normal((a, b, 4, 4)).astype(np.float32) * 0.3
        bb = rng.standard_normal(b).astype(np.float32) if bias else None
        nodes.append(convt(f"t{i}", value, f"t{i}_out", w, bb, inits, **(attrs if i == 0 else {})))
        value = f"t{i}_out"
        if i < len(channels) - 2:
            if between == "silu":
                nodes += [helper.make_node("Sigmoid", [value], [f"s{i}"]), helper.make_node("Mul", [value, f"s{i}"], [f"a{i}"])]
                value = f"a{i}"
            elif between == "flatten":
                nodes.append(helper.make_node("Identity", [value], [f"a{i}"]))
                value = f"a{i}"
    nodes.append(helper.make_node("Sigmoid", [value], ["y"]))
    up = 2 ** (len(channels) - 1)
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", channels[-1], hw[0] * up, hw[1] * up])]
    if extra_output:
        outputs.append(helper.make_tensor_value_info("t0_out", TensorProto.FLOAT, ["n", channels[1], 2 * hw[0], 2 * hw[1]]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", channels[0], *hw])],
                              outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)


def run(proto: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    return cpu_session(proto.SerializeToString()).run(None, {"x": x})


def torch_reference(proto: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """The chain evaluated with torch's conv_transpose2d (the definition, not ONNX Runtime)."""
    inits = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in proto.graph.initializer}
    h = torch.from_numpy(x)
    convs = [n for n in proto.graph.node if n.op_type == "ConvTranspose"]
    for i, node in enumerate(convs):
        h = F.conv_transpose2d(h, inits[node.input[1]], inits.get(node.input[2]) if len(node.input) > 2 else None,
                               stride=2, padding=1)
        h = F.silu(h) if i < len(convs) - 1 else torch.sigmoid(h)
    return h.numpy()


def rewritten(proto: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    copy = onnx.ModelProto.FromString(proto.SerializeToString())
    n = rewrite_transposed_conv_pairs(copy)
    onnx.checker.check_model(copy, full_check=True)
    return copy, n


@pytest.mark.parametrize("channels,hw,bias", [((3, 5, 2), (5, 3), True), ((16, 32, 1), (7, 7), True),
                                               ((2, 4, 3), (1, 4), False)])
def test_pair_rewrite_is_exact_and_leaves_no_convtranspose(channels, hw, bias):
    proto = chain(channels, hw, bias)
    new, n = rewritten(proto)
    assert n == 1
    assert not [node for node in new.graph.node if node.op_type == "ConvTranspose"]
    x = np.random.default_rng(1).standard_normal((3, channels[0], *hw)).astype(np.float32)
    want = torch_reference(proto, x)
    got, = run(new, x)
    assert got.shape == want.shape == (3, channels[-1], 4 * hw[0], 4 * hw[1])
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_three_layer_chain_rewrites_the_first_pair_and_keeps_the_last_layer():
    proto = chain((4, 6, 5, 2), (3, 4))
    new, n = rewritten(proto)
    assert n == 1 and [node.op_type for node in new.graph.node].count("ConvTranspose") == 1
    x = np.random.default_rng(2).random((2, 4, 3, 4), dtype=np.float32)
    np.testing.assert_allclose(run(new, x)[0], torch_reference(proto, x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("proto", [
    chain(strides=[1, 1]),                         # not stride 2
    chain(pads=[0, 0, 0, 0]),                      # not padding 1
    chain(group=1, dilations=[2, 2]),              # dilated
    chain(extra_output=True),                      # the intermediate is a graph output
    chain(between="flatten"),                      # something other than an elementwise op in between
    chain((3, 2)),                                 # a single ConvTranspose, no pair
], ids=["stride1", "pads0", "dilated", "graph-output", "not-elementwise", "single"])
def test_graphs_it_does_not_recognise_are_left_byte_for_byte(proto):
    before = proto.SerializeToString()
    assert rewrite_transposed_conv_pairs(proto) == 0
    assert proto.SerializeToString() == before


def test_rewrite_is_deterministic_and_names_what_it_added():
    a, _ = rewritten(chain(seed=3))
    b, _ = rewritten(chain(seed=3))
    assert a.SerializeToString() == b.SerializeToString()
    added = rewritten_nodes(a)
    assert len(added) == len(a.graph.node) - 1 and all(n.startswith(PREFIX) for n in added)   # all but the final Sigmoid
    assert rewritten_nodes(chain(seed=3)) == []
    # the second layer's four phase Convs, the nodes a FLOP count of the function scales down
    second = [n for n in a.graph.node if is_second_layer(n.name)]
    assert len(second) == 4 and {n.op_type for n in second} == {"Conv"}
    assert not any(is_second_layer(n.name) for n in chain(seed=3).graph.node)


def test_exported_conv_decoder_has_no_convtranspose_and_matches_torch():
    torch.manual_seed(0)
    card = ModelCard("vae", "conv", (1, 8, 8), 4, "bernoulli", "toy", {"hparams": '{"channels": [4, 8], "dense": 16}'})
    model = build_model(card).eval()
    _, dec = export_graphs(model, "toy")
    ops = [n.op_type for n in dec.proto.graph.node]
    assert "ConvTranspose" not in ops and "DepthToSpace" in ops
    z = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    got, = cpu_session(dec.serialize()).run(None, {"z": z})
    with torch.no_grad():
        want = model.decoder(torch.from_numpy(z)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
