"""`aeserve export` and `aeserve regenerate`: thin shells, errors as `error: ...` + exit 2."""

from __future__ import annotations

import json

import pytest
import torch
from cli_helpers import run_cli

from aeserve import checkpoint
from aeserve.card import ModelCard
from aeserve.models import build_model
from aeserve.repository import Repository


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    card = ModelCard("ae", "mlp", (1, 8, 8), 2, "bernoulli", "toy", {"hparams": '{"hidden": [16]}'})
    return checkpoint.save(build_model(card), tmp_path_factory.mktemp("ck") / "tiny.pt")


def test_export_verb(tmp_path, ckpt, capsys):
    repo = tmp_path / "repo"
    code, out, err = run_cli(["export", "--ckpt", str(ckpt), "--repo", str(repo), "--name", "t", "--max-batch", "32",
                              "--kind", "cpu", "--instances", "2", "--preferred-batch-sizes", "8,32",
                              "--queue-delay-us", "0", "--warmup"], capsys)
    assert code == 0, err
    assert "exported t version 1" in out and "parity max abs diff" in out
    m = Repository(repo).model("t")
    cfg = m.encoder_config
    assert cfg.max_batch_size == 32 and cfg.instance_group[0].count == 2 and len(cfg.model_warmup) == 2
    assert list(cfg.dynamic_batching.preferred_batch_size) == [8, 32]
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 0


@pytest.mark.parametrize("extra, message", [
    (["--name", "../x"], "error: invalid model name '../x'"),
    (["--max-batch", "0"], "error: max_batch must be an integer >= 1, got 0"),
    (["--preferred-batch-sizes", "a,b"], "error: --preferred-batch-sizes must be comma-separated integers"),
])
def test_export_verb_errors(tmp_path, ckpt, capsys, extra, message):
    code, out, err = run_cli(["export", "--ckpt", str(ckpt), "--repo", str(tmp_path / "repo"), *extra], capsys)
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "repo").exists()


def test_export_verb_missing_checkpoint(tmp_path, capsys):
    code, out, err = run_cli(["export", "--ckpt", str(tmp_path / "nope.pt"), "--repo", str(tmp_path / "r")], capsys)
    assert code == 2 and err.startswith("error: ") and not (tmp_path / "r").exists()


def test_regenerate_verb(tmp_path, ckpt, capsys):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps([{"checkpoint": str(ckpt), "name": "tiny", "max_batch": 8, "kind": "gpu",
                                     "instances": 1, "preferred_batch_sizes": [8], "queue_delay_us": 100,
                                     "version": 1}]))
    code, out, err = run_cli(["regenerate", "--manifest", str(manifest), "--repo", str(tmp_path / "repo")], capsys)
    assert code == 0, err
    assert "exported tiny version 1" in out and "regenerated" in out
    assert Repository(tmp_path / "repo").model("tiny").versions == (1,)
    code, out, err = run_cli(["regenerate", "--manifest", str(tmp_path / "none.json"), "--repo", str(tmp_path / "x")],
                             capsys)
    assert code == 2 and "does not exist" in err


def test_export_verb_int8(tmp_path, capsys):
    """--quantize int8 on a shipped checkpoint: the PSNR gate's figures are printed; the bound is passed on."""
    from pathlib import Path

    ckpt_path = Path(__file__).resolve().parents[1] / "export" / "checkpoints" / "mnist_ae2.pt"
    repo = tmp_path / "repo"
    code, out, err = run_cli(["export", "--ckpt", str(ckpt_path), "--repo", str(repo), "--name", "q",
                              "--max-batch", "16", "--quantize", "int8", "--max-psnr-drop", "0.5"], capsys)
    assert code == 0, err
    assert "int8 (encoder static, decoder dynamic): PSNR" in out and "bound 0.5 dB" in out
    assert Repository(repo).model("q").card.extra["export.precision"] == "int8"
    code, out, err = run_cli(["export", "--ckpt", str(ckpt_path), "--repo", str(repo), "--max-psnr-drop", "1"], capsys)
    assert code == 2 and "quantize='int8' exports only" in err
