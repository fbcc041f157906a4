"""int8 export: ONNX Runtime quantization gated on reconstruction PSNR; a failing graph is refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from aeserve import checkpoint
from aeserve.data import load_dataset
from aeserve.errors import ConfigError, QuantizationError
from aeserve.export import export_model
from aeserve.export.quantize import DEFAULT_MAX_PSNR_DROP_DB, check_methods
from aeserve.repository import Repository
from aeserve.runtime.embedded import EmbeddedRuntime

CKPTS = Path(__file__).resolve().parents[1] / "export" / "checkpoints"


@pytest.fixture(scope="module")
def images():
    x = load_dataset("mnist", "train", limit=320).x
    return x[:128], x[128:]          # calibration, gate (disjoint)


def _ops(path: Path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def _snapshot(root: Path) -> dict[str, str]:
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
            for p in sorted(root.rglob("*"))}


def test_int8_conv_vae_passes_gate_and_serves(tmp_path, images):
    cal, gate = images
    model = checkpoint.load(CKPTS / "mnist_vae.pt")
    r = export_model(model, tmp_path, "q_vae", max_batch=64, quantize="int8", calibration=cal, gate_images=gate)
    q = r.quantization
    assert q.methods == {"encoder": "static", "decoder": "dynamic"} and q.images == len(gate)
    assert q.drop_db <= DEFAULT_MAX_PSNR_DROP_DB and q.psnr_int8 > 15
    assert "QLinearConv" in _ops(r.paths["encoder"]) and "DynamicQuantizeLinear" in _ops(r.paths["decoder"])
    # the decoder's phase-space Convs (aeserve.export.phase_conv) stay fp32, as its ConvTranspose did
    assert "Conv" in _ops(r.paths["decoder"]) and "ConvInteger" not in _ops(r.paths["decoder"])
    card = Repository(tmp_path).model("q_vae").card
    assert card.extra["export.precision"] == "int8" and "encoder=static" in card.extra["export.quantization"]
    rt = EmbeddedRuntime(tmp_path)
    mu8 = rt.encode("q_vae", gate[:32])["mu"]
    with torch.no_grad():
        mu32 = model.encoder(torch.from_numpy(gate[:32]))[0].numpy()
    assert np.abs(mu8 - mu32).mean() < 0.1 * np.abs(mu32).mean()


def test_graph_failing_the_bound_is_refused_and_nothing_written(tmp_path, images):
    """An activation outlier (a hidden unit at 1e4 that the next layer ignores) leaves fp32 exact
    but wipes out every other activation in per-tensor int8: the gate must refuse it."""
    cal, gate = images
    model = checkpoint.load(CKPTS / "mnist_ae2.pt")
    with torch.no_grad():
        model.decoder.body[0].bias[0] = 1e4
        model.decoder.body[2].weight[:, 0] = 0.0
    repo = tmp_path / "repo"
    before = _snapshot(repo)
    with pytest.raises(QuantizationError, match=r"int8 export refused: reconstruction PSNR drops"):
        export_model(model, repo, "bad", max_batch=64, quantize="int8", calibration=cal, gate_images=gate)
    assert _snapshot(repo) == before
    # the same model exports in fp32: it is the int8 graph, not the model, that fails
    assert export_model(model, repo, "bad", max_batch=64).quantization is None


@pytest.mark.parametrize("kwargs, match", [
    ({"quantize": "int4"}, "quantize must be None or 'int8'"),
    ({"quantize": "int8", "fp16": True}, "not combined with fp16"),
    ({"max_psnr_drop_db": 0.5}, "quantize='int8' exports only"),
    ({"quantize": "int8", "max_psnr_drop_db": -1}, ">= 0"),
    ({"quantize": "int8", "calibration": np.zeros((4, 3, 5, 5), np.float32)}, "calibration images must be"),
])
def test_bad_quantize_arguments(tmp_path, kwargs, match):
    model = checkpoint.load(CKPTS / "mnist_ae2.pt")
    with pytest.raises(ConfigError, match=match):
        export_model(model, tmp_path, "m", max_batch=16, gate_images=np.zeros((2, 1, 28, 28), np.float32), **kwargs)
    assert not any(tmp_path.iterdir())


def test_methods_checked():
    assert check_methods({"decoder": "static"}) == {"encoder": "static", "decoder": "static"}
    with pytest.raises(ConfigError, match="encoder"):
        check_methods({"decoder": "fp8"})


def test_quantizer_leaves_logging_alone(images, monkeypatch):
    """ORT's quantizer logs through the root logger (``logging.warning`` installs a stderr
    handler where the root has none); quantizing must not leave a handler behind."""
    import logging

    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    from aeserve.export.onnx_graphs import export_graphs
    from aeserve.export.quantize import quantize_graph

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    enc, _ = export_graphs(checkpoint.load(CKPTS / "mnist_ae2.pt"), "m")
    quantize_graph(enc, "static", images[0][:64])
    assert root.handlers == handlers and root.level == level
