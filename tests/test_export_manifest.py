"""The export manifest and `regenerate`: validation, rebuild into a fresh dir, swap, failure leaves repo."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aeserve import checkpoint
from aeserve.card import ModelCard
from aeserve.errors import CheckpointError, ConfigError
from aeserve.export import load_manifest, regenerate
from aeserve.models import build_model
from aeserve.ort_session import cpu_session
from aeserve.repository import Repository

ENTRY = {"checkpoint": "checkpoints/a.pt", "name": "a", "max_batch": 16, "kind": "gpu", "instances": 1,
         "preferred_batch_sizes": [4, 16], "queue_delay_us": 50, "version": 1}


def write_manifest(path: Path, entries) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries))
    return path


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "")
            for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    for i, (family, name) in enumerate((("vae", "a"), ("dae", "b"))):
        torch.manual_seed(i)
        card = ModelCard(family, "mlp", (1, 8, 8), 3, "bernoulli", "toy", {"hparams": '{"hidden": [16]}'})
        checkpoint.save(build_model(card), d / "checkpoints" / f"{name}.pt")
    write_manifest(d / "manifest.json", [ENTRY, {**ENTRY, "checkpoint": "checkpoints/b.pt", "name": "b",
                                                 "kind": "cpu", "instances": 2, "version": 3, "fp16": True}])
    return d


def test_load_manifest(export_dir):
    a, b = load_manifest(export_dir / "manifest.json")
    assert a.checkpoint == export_dir / "checkpoints" / "a.pt" and a.preferred_batch_sizes == (4, 16)
    assert (b.name, b.kind, b.instances, b.version, b.fp16, b.warmup) == ("b", "cpu", 2, 3, True, False)
    assert a.export_options()["queue_delay_us"] == 50


@pytest.mark.parametrize("content, match", [
    (None, "does not exist"),
    ("{not json", "not readable JSON"),
    ("[]", "non-empty JSON list"),
    ('{"checkpoint": "x"}', "non-empty JSON list"),
    (json.dumps([1]), "entry 0 must be an object"),
    (json.dumps([{k: v for k, v in ENTRY.items() if k != "version"}]), r"missing keys \['version'\]"),
    (json.dumps([{**ENTRY, "colour": "red"}]), r"unknown keys \['colour'\]"),
    (json.dumps([{**ENTRY, "max_batch": "16"}]), "max_batch must be int"),
    (json.dumps([{**ENTRY, "version": True}]), "version must be int"),
    (json.dumps([ENTRY, ENTRY]), "duplicate model name 'a'"),
])
def test_bad_manifest(tmp_path, content, match):
    path = tmp_path / "manifest.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=match):
        load_manifest(path)


def test_regenerate_builds_and_replaces(tmp_path, export_dir):
    repo = tmp_path / "repo"
    (repo / "a_encoder" / "7").mkdir(parents=True)      # the manifest owns a_*: replaced in whole
    (repo / "other_encoder" / "1").mkdir(parents=True)  # not the manifest's: left alone
    (repo / "README").write_text("mine")
    results = regenerate(export_dir / "manifest.json", repo)
    assert [(r.name, r.version) for r in results] == [("a", 1), ("b", 3)]
    assert results[0].paths["encoder"] == repo / "a_encoder" / "1" / "model.onnx"
    assert results[0].paths["encoder"].is_file() and results[1].fp16
    assert sorted(p.name for p in repo.iterdir()) == ["README", "a_decoder", "a_encoder", "b_decoder", "b_encoder",
                                                     "other_encoder"]
    assert (repo / "other_encoder" / "1").is_dir() and (repo / "README").read_text() == "mine"
    assert not (repo / "a_encoder" / "7").exists()
    r = Repository(repo)
    assert r.models() == ["a", "b"] and r.model("b").versions == (3,)
    assert r.model("b").encoder_config.instance_group[0].count == 2
    assert list(r.model("a").encoder_config.dynamic_batching.preferred_batch_size) == [4, 16]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]  # no staging/old dirs left

    # regenerating again yields numerically the same graphs
    first = cpu_session(str(r.model("a").decoder_path())).run(None, {"z": np.ones((2, 3), np.float32)})[0]
    regenerate(export_dir / "manifest.json", repo)
    again = cpu_session(str(Repository(repo).model("a").decoder_path())).run(None, {"z": np.ones((2, 3), np.float32)})[0]
    np.testing.assert_array_equal(first, again)


def test_failed_regenerate_leaves_repository(tmp_path, export_dir):
    repo = tmp_path / "repo"
    regenerate(write_manifest(tmp_path / "m1.json", [{**ENTRY, "checkpoint": str(export_dir / "checkpoints/a.pt")}]),
               repo)
    before = snapshot(repo)
    broken = write_manifest(tmp_path / "m2.json", [{**ENTRY, "checkpoint": str(export_dir / "checkpoints/a.pt")},
                                                   {**ENTRY, "name": "c", "checkpoint": "missing.pt"}])
    with pytest.raises(CheckpointError):
        regenerate(broken, repo)
    assert snapshot(repo) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m1.json", "m2.json", "repo"]
