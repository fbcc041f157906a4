"""aeserve.classifier_train and ``aeserve build-classifier``: training, ONNX export parity, errors."""

from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import run_cli

from aeserve.classifier import Classifier
from aeserve.classifier_train import accuracy, build_network, train_classifier
from aeserve.data import load_dataset
from aeserve.errors import InputError


@pytest.fixture(scope="module")
def mnist_small():
    return load_dataset("mnist", "train", limit=2000), load_dataset("mnist", "test", limit=1000)


def test_training_beats_chance(mnist_small):
    train, test = mnist_small
    net = train_classifier(train.x, train.y, epochs=1, seed=0, progress=False)
    acc = accuracy(net, test.x, test.y)
    assert acc > 0.3, acc                                # 16 steps on 2000 images: well above chance (0.1)


def test_training_is_deterministic_for_a_seed(mnist_small):
    import torch

    x, y = mnist_small[0].x[:256], mnist_small[0].y[:256]
    a = train_classifier(x, y, epochs=1, seed=3, progress=False)
    b = train_classifier(x, y, epochs=1, seed=3, progress=False)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_bad_labels_are_refused():
    with pytest.raises(InputError):
        train_classifier(np.zeros((4, 1, 28, 28), np.float32), np.array([0, 1, 2, 10]), progress=False)


def test_network_outputs_logits_and_features():
    import torch

    logits, feats = build_network()(torch.zeros(5, 1, 28, 28))
    assert logits.shape == (5, 10) and feats.shape == (5, 128)


def test_build_classifier_verb_exports_what_torch_computes(tmp_path, capsys):
    """One export serves two checks: the verb's file, and ONNX parity with the same torch
    network (training is deterministic for a seed, so retraining gives the exported weights)."""
    import torch

    code, out, err = run_cli(["build-classifier", "mnist", "--epochs", "1", "--limit", "256",
                              "--out-dir", str(tmp_path), "--quiet"], capsys)
    assert code == 0, err
    path = tmp_path / "mnist_classifier.onnx"
    assert f"-> {path}" in out and out.startswith("mnist: test accuracy ")
    clf = Classifier(path)
    assert clf.dataset == "mnist" and clf.metadata["train_size"] == "256" and clf.metadata["epochs"] == "1"
    assert clf.metadata["command"].startswith("aeserve build-classifier mnist")
    train = load_dataset("mnist", "train", limit=256)
    net = train_classifier(train.x, train.y, epochs=1, seed=0, progress=False)
    x = load_dataset("mnist", "test", limit=7).x
    for n in (1, 7):                                     # symbolic batch axis
        with torch.no_grad():
            logits, feats = net(torch.from_numpy(x[:n]))
        got = clf.predict(x[:n])
        np.testing.assert_allclose(got.logits, logits.numpy(), atol=1e-4, rtol=1e-4)
        np.testing.assert_allclose(got.features, feats.numpy(), atol=1e-4, rtol=1e-4)
        assert got.features.shape == (n, 128) and got.probs.shape == (n, 10)
    u8 = np.rint(x[:3, 0] * 255).astype(np.uint8)        # uint8 and (N, H, W) inputs are the same images
    np.testing.assert_allclose(clf.predict(u8).logits, clf.predict(x[:3]).logits, atol=1e-4)
    code, _, err = run_cli(["build-classifier", "cifar10", "--out-dir", str(tmp_path)], capsys)
    assert code == 2 and "no classifier for dataset 'cifar10'" in err

