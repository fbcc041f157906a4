"""export_model / export_checkpoint: graphs, names, card, parity gate, fp16, versions, bad input."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

import aeserve
from aeserve import checkpoint
from aeserve.card import ModelCard
from aeserve.errors import CheckpointError, ConfigError, ExportError, ParityError, RepositoryError
from aeserve.export import export_checkpoint, export_model
from aeserve.export import exporter as exporter_mod
from aeserve.export.onnx_graphs import Graph, export_graphs, find_random_ops, symbolic_batch
from aeserve.export.parity import FP16_TOLERANCE, FP32_TOLERANCE, Tolerance, check_parity, parity_batches
from aeserve.export.writer import temp_dirs
from aeserve.models import build_model
from aeserve.ort_session import cpu_session
from aeserve.repository import Repository, card_from_config

TINY_MLP = {"hidden": [32]}
TINY_CONV = {"channels": [4, 8], "dense": 16}


def tiny(family: str = "vae", arch: str = "mlp", seed: int = 0, **extra: str):
    torch.manual_seed(seed)
    hp = TINY_MLP if arch == "mlp" else TINY_CONV
    card = ModelCard(family, arch, (1, 8, 8), 4, "bernoulli", "toy", {"hparams": str(hp).replace("'", '"'),
                                                                   **{k.replace("__", "."): v for k, v in extra.items()}})
    return build_model(card).eval()


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root -> content hash ('' for dirs): equal snapshots = nothing written."""
    if not root.exists():
        return {}
    if root.is_file():
        return {".": hashlib.sha256(root.read_bytes()).hexdigest()}
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "")
            for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def vae_repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("vae") / "repo"
    model = tiny("vae", "conv", metrics__test_mse="0.5")
    result = export_model(model, repo, "toy_vae", max_batch=16)
    return repo, model, result


def test_vae_graphs_contract(vae_repo):
    repo, model, result = vae_repo
    assert result.name == "toy_vae" and result.version == 1 and result.exporter == "dynamo"
    assert result.paths["encoder"] == repo / "toy_vae_encoder" / "1" / "model.onnx"
    enc = cpu_session(str(result.paths["encoder"]))
    dec = cpu_session(str(result.paths["decoder"]))
    assert [i.name for i in enc.get_inputs()] == ["x"]
    assert [o.name for o in enc.get_outputs()] == ["mu", "logvar"]
    assert [i.name for i in dec.get_inputs()] == ["z"] and [o.name for o in dec.get_outputs()] == ["x_hat"]
    x = np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)
    mu, logvar = enc.run(None, {"x": x})
    x_hat, = dec.run(None, {"z": mu})
    assert mu.shape == logvar.shape == (5, 4) and x_hat.shape == (5, 1, 8, 8)
    with torch.no_grad():
        t_mu, t_logvar = model.encoder(torch.from_numpy(x))
    np.testing.assert_allclose(mu, t_mu.numpy(), atol=1e-5)
    np.testing.assert_allclose(x_hat, model.decoder(t_mu).detach().numpy(), atol=1e-5)


def test_graph_files_self_contained_symbolic_deterministic(vae_repo):
    repo, model, result = vae_repo
    for role in ("encoder", "decoder"):
        path = result.paths[role]
        assert sorted(p.name for p in path.parent.iterdir()) == ["model.onnx"]  # no external-data side file
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto, full_check=True)
        assert all(symbolic_batch(proto).values())
        assert find_random_ops(proto) == []
        props = {p.key: p.value for p in proto.metadata_props}
        assert props["aeserve.name"] == "toy_vae" and props["aeserve.family"] == "vae"
        assert props["aeserve.metrics.test_mse"] == "0.5"


def test_card_in_config_matches_onnx_metadata(vae_repo):
    repo, model, result = vae_repo
    m = Repository(repo).model("toy_vae")
    props = {p.key: p.value for p in onnx.load(str(result.paths["encoder"])).metadata_props}
    assert m.card.to_dict() == props == card_from_config(m.decoder_config).to_dict()
    assert m.card.name == "toy_vae" and m.card.metrics == {"test_mse": 0.5}
    assert m.encoder_config.max_batch_size == 16
    assert [o.name for o in m.encoder_config.output] == ["mu", "logvar"]
    assert list(m.decoder_config.output[0].dims) == [1, 8, 8]


@pytest.fixture(scope="module")
def ae_graphs():
    model = tiny("ae")
    return model, export_graphs(model, "toy_ae")


def test_deterministic_family_exports_z(ae_graphs):
    _, (enc, dec) = ae_graphs
    assert enc.output_names == ("z",) and dec.input_name == "z"
    assert [o.name for o in enc.proto.graph.output] == ["z"]


def test_versions_side_by_side_never_overwritten(tmp_path):
    model = tiny("ae")
    r1 = export_model(model, tmp_path, "m", max_batch=8)
    r2 = export_model(model, tmp_path, "m", max_batch=32)
    assert (r1.version, r2.version) == (1, 2)
    assert r1.paths["encoder"].is_file() and r2.paths["encoder"].is_file()
    m = Repository(tmp_path).model("m")
    assert m.versions == (1, 2) and m.max_batch_size == 32  # config follows the newest export
    assert temp_dirs(tmp_path) == []
    before = snapshot(tmp_path)
    with pytest.raises(RepositoryError, match="version 2 already exists"):
        export_model(model, tmp_path, "m", max_batch=8, version=2)
    assert snapshot(tmp_path) == before
    assert export_model(model, tmp_path, "m", max_batch=8, version=5).version == 5
    assert Repository(tmp_path).model("m").versions == (1, 2, 5)


@pytest.fixture(scope="module")
def kept_repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("kept")
    export_model(tiny("ae"), root / "repo", "keep", max_batch=8)
    return root


@pytest.mark.parametrize("kwargs, error, match", [
    ({"name": "../x"}, RepositoryError, "invalid model name"),
    ({"name": "/abs"}, RepositoryError, "invalid model name"),
    ({"name": "a/b"}, RepositoryError, "invalid model name"),
    ({"name": ""}, RepositoryError, "invalid model name"),
    ({"max_batch": 0}, ConfigError, "max_batch must be an integer >= 1"),
    ({"max_batch": -3}, ConfigError, "max_batch"),
    ({"kind": "tpu"}, ConfigError, "kind must be one of gpu, cpu"),
    ({"instances": 0}, ConfigError, "instances"),
    ({"preferred_batch_sizes": [4, 64]}, ConfigError, "preferred batch sizes"),
    ({"queue_delay_us": -1}, ConfigError, "queue_delay_us"),
])
def test_bad_arguments_write_nothing(kept_repo, kwargs, error, match):
    model = tiny("ae")
    before = snapshot(kept_repo)
    args = {"name": "m", "max_batch": 8, **kwargs}
    with pytest.raises(error, match=match):
        export_model(model, kept_repo / "repo", **args)
    with pytest.raises(error, match=match):
        export_model(model, kept_repo / "fresh", **args)
    assert snapshot(kept_repo) == before and not (kept_repo / "fresh").exists()
    assert Repository(kept_repo / "repo").models() == ["keep"]


def test_repository_path_is_a_file(tmp_path):
    target = tmp_path / "repo"
    target.write_text("not a directory")
    with pytest.raises(RepositoryError, match="not a directory"):
        export_model(tiny("ae"), target, "m", max_batch=8)
    with pytest.raises(RepositoryError, match="not a directory"):
        export_model(tiny("ae"), target / "sub", "m", max_batch=8)
    assert target.read_text() == "not a directory"


def test_not_an_autoencoder():
    with pytest.raises(ExportError, match="expected an aeserve Autoencoder"):
        export_model(nn.Linear(2, 2), "unused", "m")


def test_parity_gate_failure_writes_nothing(tmp_path, monkeypatch):
    model, other = tiny("vae", seed=0), tiny("vae", seed=1)
    real = exporter_mod.export_graphs
    monkeypatch.setattr(exporter_mod, "export_graphs", lambda m, name, fp16=False: real(other, name, fp16=fp16))
    with pytest.raises(ParityError, match=r"max abs diff .* exceeds the fp32 tolerance atol=0.0001"):
        export_model(model, tmp_path / "repo", "m", max_batch=8)
    assert not (tmp_path / "repo").exists()


def test_parity_detects_small_perturbation(ae_graphs):
    model, (enc, _) = ae_graphs
    check_parity(enc, model.encoder, max_batch=9)
    perturbed = copy.deepcopy(model)
    with torch.no_grad():
        perturbed.encoder.heads[0].bias += 1e-3
    with pytest.raises(ParityError, match="encoder output 'z' at batch 1"):
        check_parity(enc, perturbed.encoder, max_batch=9)


def test_parity_refuses_fixed_batch_axis(ae_graphs):
    model, (enc, _) = ae_graphs
    proto = onnx.ModelProto()
    proto.CopyFrom(enc.proto)
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    with pytest.raises(ParityError, match="fixed batch axis on \\['x'\\]"):
        check_parity(dataclasses.replace(enc, proto=proto), model.encoder, max_batch=8)


@pytest.mark.parametrize("max_batch, expected", [(1, (1,)), (2, (1, 2)), (4, (1, 3, 4)), (256, (1, 7, 256))])
def test_parity_batches(max_batch, expected):
    assert parity_batches(max_batch) == expected


def test_fp16_export_passes_looser_gate_with_fp32_io(tmp_path):
    model = tiny("vae")
    r = export_model(model, tmp_path, "h", max_batch=16, fp16=True)
    assert r.fp16 and all(p.tolerance == FP16_TOLERANCE for p in r.parity)
    proto = onnx.load(str(r.paths["encoder"]))
    io_types = {v.name: v.type.tensor_type.elem_type for v in (*proto.graph.input, *proto.graph.output)}
    assert set(io_types.values()) == {onnx.TensorProto.FLOAT}
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in proto.graph.initializer)
    assert Repository(tmp_path).model("h").card.get("export.precision") == "fp16"
    enc = Graph("encoder", proto, "x", (1, 8, 8), ("mu", "logvar"), (4,), "dynamo", fp16=True)
    check_parity(enc, model.encoder, max_batch=16)
    with pytest.raises(ParityError, match="fp16 tolerance"):  # fp16 is measurably not fp32
        check_parity(enc, model.encoder, max_batch=16, tolerance=Tolerance(1e-7, 0.0))


def test_fp16_refused_when_model_overflows_half(tmp_path):
    model = tiny("ae")
    with torch.no_grad():
        model.encoder.heads[0].weight.mul_(1e6)
    with pytest.raises(ParityError, match="NaN/Inf|exceeds the fp16 tolerance"):
        export_model(model, tmp_path / "repo", "h", max_batch=8, fp16=True)
    assert not (tmp_path / "repo").exists()
    assert FP32_TOLERANCE.atol < FP16_TOLERANCE.atol


class _Noisy(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        z = self.inner(x)
        return z + torch.randn_like(z)


def test_random_op_refused(tmp_path):
    model = tiny("ae")
    model.encoder = _Noisy(model.encoder)
    with pytest.raises(ExportError, match="random ops"):
        export_model(model, tmp_path / "repo", "r", max_batch=8)
    assert not (tmp_path / "repo").exists()


def test_find_random_ops_looks_into_subgraphs():
    inner = onnx.helper.make_graph([onnx.helper.make_node("RandomUniformLike", ["a"], ["b"])], "g", [], [])
    node = onnx.helper.make_node("If", ["c"], ["d"], then_branch=inner, else_branch=inner)
    model = onnx.helper.make_model(onnx.helper.make_graph([node], "main", [], []))
    assert find_random_ops(model) == ["RandomUniformLike", "RandomUniformLike"]


def test_torchscript_fallback_says_so(tmp_path, monkeypatch):
    real = torch.onnx.export

    def no_dynamo(*args, **kwargs):
        if kwargs.get("dynamo"):
            raise RuntimeError("simulated dynamo failure")
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", no_dynamo)
    with pytest.warns(UserWarning, match="falling back to the TorchScript exporter"):
        r = export_model(tiny("vae"), tmp_path, "fb", max_batch=8)
    assert r.exporter == "torchscript"
    assert all(symbolic_batch(onnx.load(str(r.paths[k]))).values() for k in ("encoder", "decoder"))


def test_export_checkpoint(tmp_path):
    ckpt = checkpoint.save(tiny("vae"), tmp_path / "toy.pt")
    r = export_checkpoint(ckpt, tmp_path / "repo", max_batch=8)
    assert r.name == "toy" and Repository(tmp_path / "repo").model("toy").card.family == "vae"


@pytest.mark.parametrize("content", [None, b"", b"PK\x03\x04truncated", b"\x80\x04not a checkpoint"])
def test_bad_checkpoint_writes_nothing(tmp_path, content):
    ckpt = tmp_path / "bad.pt"
    if content is not None:
        ckpt.write_bytes(content)
    with pytest.raises(CheckpointError):
        export_checkpoint(ckpt, tmp_path / "repo", name="m", max_batch=8)
    assert not (tmp_path / "repo").exists()


def test_export_checkpoint_checks_arguments_before_reading(tmp_path):
    with pytest.raises(ConfigError):
        export_checkpoint(tmp_path / "missing.pt", tmp_path / "repo", name="m", max_batch=0)
    with pytest.raises(RepositoryError):
        export_checkpoint(tmp_path / "missing.pt", tmp_path / "repo", name="../m")


def test_model_left_in_another_dtype_or_training_mode_exports_from_a_cpu_copy(tmp_path):
    """A model left as training ended (train mode, float64 here; CUDA takes the same path:
    ``exporter.cpu_copy``) exports, and the caller's model keeps its dtype and mode."""
    model = tiny("vae", "mlp").double().train()
    result = export_model(model, tmp_path, "left_over", max_batch=8)
    assert result.max_abs_diff < 1e-4
    assert model.training and next(model.parameters()).dtype == torch.float64
    copy_ = exporter_mod.cpu_copy(model)
    assert copy_ is not model and not copy_.training and next(copy_.parameters()).device.type == "cpu"
    already = tiny("ae", "mlp")
    assert exporter_mod.cpu_copy(already) is already


def test_both_cards_share_the_export_id_and_configs_pin_the_version(vae_repo):
    repo, _, result = vae_repo
    m = Repository(repo).model("toy_vae")
    graph_ids = {{p.key: p.value for p in onnx.load(str(result.paths[r])).metadata_props}["aeserve.export_id"]
                 for r in ("encoder", "decoder")}
    config_ids = {card_from_config(c).export_id for c in (m.encoder_config, m.decoder_config)}
    assert graph_ids == config_ids and len(graph_ids) == 1 and len(next(iter(graph_ids))) == 32
    for cfg in (m.encoder_config, m.decoder_config):
        assert list(cfg.version_policy.specific.versions) == [result.version]


def test_export_id_tells_exports_apart(tmp_path):
    export_model(tiny("ae", seed=1), tmp_path, "a", max_batch=8)
    export_model(tiny("ae", seed=2), tmp_path, "b", max_batch=8)
    ids = [Repository(tmp_path).model(n).card.export_id for n in ("a", "b")]
    assert ids[0] != ids[1]


CLONE_EXPORT = """
import sys, torch, aeserve
from aeserve.card import ModelCard
from aeserve.export import export_model
from aeserve.models import build_model
torch.manual_seed(0)
card = ModelCard("ae", "mlp", (1, 8, 8), 4, "bernoulli", "toy", {"hparams": '{"hidden": [32]}'})
export_model(build_model(card).eval(), sys.argv[1], "m", max_batch=8)
print(aeserve.__file__)
"""


def test_export_bytes_do_not_depend_on_where_the_source_lives(tmp_path):
    src = Path(aeserve.__file__).parent
    clone = tmp_path / "another-checkout-with-a-longer-name"
    shutil.copytree(src, clone / "aeserve", ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-c", CLONE_EXPORT, str(tmp_path / "there")], cwd=clone,
                          env={**os.environ, "PYTHONPATH": str(clone)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(clone / "aeserve" / "__init__.py")   # really the other checkout
    export_model(tiny("ae"), tmp_path / "here", "m", max_batch=8)
    here, there = snapshot(tmp_path / "here"), snapshot(tmp_path / "there")
    assert here == there and len(here) == 8  # 2 model dirs, 2 version dirs, 2 configs, 2 graphs
    for onnx_file in (tmp_path / "there").rglob("model.onnx"):
        data = onnx_file.read_bytes()
        assert str(clone).encode() not in data and str(src.parent).encode() not in data
        assert b"site-packages" not in data and b'File "' not in data
