"""aeserve.finetune and `aeserve finetune`: a classifier from an encoder and a few labels,
exported as <name>_classifier and served by the embedded runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from apps_helpers import restoration_repository
from cli_helpers import run_cli

from aeserve import Client, checkpoint
from aeserve.card import ModelCard
from aeserve.errors import ConfigError, DataError
from aeserve.finetune import ClassifierModel, finetune
from aeserve.labels import select_labels
from aeserve.models import build_model


def _images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three classes: a bright band at the top, middle or bottom of a noisy 28x28 image."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.random((n, 1, 28, 28)).astype(np.float32) * 0.3
    for i, c in enumerate(y):
        x[i, 0, 9 * c:9 * c + 9] += 0.6
    return x.clip(0, 1), y.astype(np.int64)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    (xtr, ytr), (xte, yte) = _images(300, 0), _images(200, 1)
    path = root / "bands.npz"
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    np.save(root / "unlabelled.npy", xtr)
    torch.manual_seed(0)
    card = ModelCard("vae", "mlp", (1, 28, 28), 4, "bernoulli", str(path), {"hparams": json.dumps({"hidden": [32]})})
    ckpt = checkpoint.save(build_model(card), root / "tiny.pt")
    return {"npz": path, "npy": root / "unlabelled.npy", "ckpt": ckpt, "root": root}


def test_select_labels_is_balanced_and_seeded():
    y = np.repeat(np.arange(10), 50)
    idx = select_labels(y, 100, 10, seed=0)
    assert len(idx) == 100 and np.all(np.bincount(y[idx]) == 10)
    assert np.array_equal(idx, select_labels(y, 100, 10, seed=0))
    assert len(select_labels(y, len(y), 10, seed=0)) == len(y)


@pytest.mark.parametrize("labels,err,match", [(2, ConfigError, "number of classes"),
                                              (301, ConfigError, "more than the 300"),
                                              (2.5, ConfigError, "labels")])
def test_bad_label_counts(data, labels, err, match):
    with pytest.raises(err, match=match):
        finetune(data["ckpt"], labels, data=str(data["npz"]), mode="probe", steps=2, progress=False)


def test_unlabelled_data_and_bad_mode_are_refused(data):
    with pytest.raises(DataError, match="labelled data"):
        finetune(data["ckpt"], 10, data=str(data["npy"]), mode="probe", steps=2, progress=False)
    with pytest.raises(ConfigError, match="unknown finetune mode"):
        finetune(data["ckpt"], 10, data=str(data["npz"]), mode="linear", progress=False)


def test_probe_learns_and_finetune_changes_the_encoder(data):
    probe = finetune(data["ckpt"], 30, data=str(data["npz"]), mode="probe", steps=50, progress=False)
    assert probe.accuracy > 0.6  # chance is 1/3
    enc0 = checkpoint.load(data["ckpt"]).encoder.state_dict()
    assert all(torch.equal(v, probe.model.encoder.state_dict()[k]) for k, v in enc0.items())
    ft = finetune(data["ckpt"], 30, data=str(data["npz"]), mode="finetune", steps=20, progress=False)
    assert any(not torch.equal(v, ft.model.encoder.state_dict()[k]) for k, v in enc0.items())
    card = ft.model.card
    assert card.get("task") == "classifier" and card.class_names == ("0", "1", "2")
    assert card.get("finetune.labels") == "30" and "anomaly.threshold" not in card.extra


def test_checkpoint_round_trip(data, tmp_path):
    r = finetune(data["ckpt"], 30, data=str(data["npz"]), mode="probe", steps=5, progress=False)
    back = checkpoint.load(checkpoint.save(r.model, tmp_path / "clf.pt"))
    assert isinstance(back, ClassifierModel)
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(back(x), r.model(x))


def test_cli_finetune_exports_a_served_classifier(data, tmp_path, capsys):
    repo = restoration_repository(tmp_path / "repo")
    code, stdout, err = run_cli(["finetune", "--ckpt", str(data["ckpt"]), "--labels", "30", "--data",
                                 str(data["npz"]), "--mode", "probe", "--steps", "50", "--repo", str(repo),
                                 "--name", "tiny", "--kind", "cpu", "--quiet", "--out", str(tmp_path / "c.pt")],
                                capsys)
    assert code == 0, err
    assert "tiny_classifier version 1" in stdout
    x, y = _images(50, 2)
    with Client(repository=repo, model="t_inpaint") as c:
        probs = c.classify(x, classifier="tiny")
        assert c.classifier_card("tiny").class_names == ("0", "1", "2")
    model = checkpoint.load(tmp_path / "c.pt")
    with torch.no_grad():
        assert np.allclose(probs, model(torch.from_numpy(x)).numpy(), atol=1e-5)
    assert (probs.argmax(1) == y).mean() > 0.6


def test_cli_finetune_bad_labels_writes_nothing(data, tmp_path, capsys):
    repo = tmp_path / "repo"
    code, _, err = run_cli(["finetune", "--ckpt", str(data["ckpt"]), "--labels", "1", "--data", str(data["npz"]),
                            "--repo", str(repo), "--quiet"], capsys)
    assert code == 2 and "number of classes" in err and not repo.exists()
