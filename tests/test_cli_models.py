"""`aeserve models` and the listing behind it (torch-free)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from aeserve.card import ModelCard
from aeserve.cli import main
from aeserve.export.listing import ModelInfo, format_table, list_models
from aeserve.export.writer import write_models


def card_config(name: str, card: ModelCard, mb: int) -> str:
    cfg = pb.ModelConfig(name=name, backend="onnxruntime", max_batch_size=mb)
    for k, v in card.to_dict().items():
        cfg.parameters[k].string_value = v
    return text_format.MessageToString(cfg)


def add_model(repo: Path, name: str, card: ModelCard, mb: int = 64) -> None:
    write_models(repo, {f"{name}_{r}": (card_config(f"{name}_{r}", card, mb), b"onnx") for r in ("encoder", "decoder")})


@pytest.fixture
def repo(tmp_path):
    vae = ModelCard("vae", "conv", (1, 28, 28), 16, "bernoulli", "mnist",
                    {"metrics.test_mse": "0.0123456", "metrics.test_elbo": "-95.5", "metrics.val_loss": "1"})
    add_model(tmp_path, "mnist_vae", vae)
    add_model(tmp_path, "mnist_vae", vae)
    add_model(tmp_path, "ae2", ModelCard("ae", "mlp", (1, 28, 28), 2, "bernoulli", "fashion-mnist"), mb=8)
    (tmp_path / "broken_encoder").mkdir()
    (tmp_path / "broken_encoder" / "config.pbtxt").write_text("this is { not pbtxt")
    (tmp_path / "broken_decoder").mkdir()
    (tmp_path / "broken_decoder" / "config.pbtxt").write_text("name: 'broken_decoder'")
    return tmp_path


def test_list_models(repo):
    rows = list_models(repo)
    assert [r.name for r in rows] == ["ae2", "broken", "mnist_vae"]
    ae2, broken, vae = rows
    assert (vae.family, vae.arch, vae.latent_dim, vae.dataset, vae.versions, vae.max_batch_size) == \
        ("vae", "conv", 16, "mnist", (1, 2), 64)
    assert vae.metrics["test_elbo"] == -95.5
    assert ae2.latent_dim == 2 and ae2.metrics == {} and ae2.error is None
    assert broken.error and "not a valid Triton ModelConfig" in broken.error


def test_format_table(repo):
    lines = format_table(list_models(repo)).splitlines()
    assert lines[0].split() == ["name", "family", "arch", "latent", "dataset", "versions", "max_batch", "metrics"]
    vae = next(line for line in lines if line.startswith("mnist_vae"))
    assert vae.split()[:7] == ["mnist_vae", "vae", "conv", "16", "mnist", "1,2", "64"]
    assert "test_elbo=-95.5" in vae and "test_mse=0.01235" in vae and "val_loss" not in vae
    assert format_table([]) == "no models in repository"
    assert "error:" in format_table([ModelInfo("x", error="boom")])


def test_models_verb(repo, capsys):
    main(["models", "--repo", str(repo)])
    out = capsys.readouterr().out
    assert "mnist_vae" in out and "fashion-mnist" in out


def test_models_verb_bad_repository(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    for target, message in ((tmp_path / "file", "is not a directory"), (tmp_path / "none", "does not exist")):
        with pytest.raises(SystemExit) as e:
            main(["models", "--repo", str(target)])
        assert e.value.code == 2 and message in capsys.readouterr().err


def test_models_verb_does_not_import_torch(repo):
    code = ("import sys; from aeserve.cli import main\n"
            f"main(['models', '--repo', {str(repo)!r}])\n"
            "assert 'torch' not in sys.modules and 'onnx' not in sys.modules, 'torch/onnx imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "mnist_vae" in done.stdout
