"""The project's classifier: training, ONNX export parity, inference errors, shipped files."""

from __future__ import annotations

import numpy as np
import pytest

import eval_fixtures as fx
from aeserve.classifier import (Classifier, accuracy, build_network, default_classifier_path,
                                export_classifier, train_classifier)
from aeserve.data import load_dataset
from aeserve.errors import ConfigError, InputError


@pytest.fixture(scope="module")
def mnist_small():
    return load_dataset("mnist", "train", limit=2000), load_dataset("mnist", "test", limit=1000)


def test_trained_classifier_exports_to_onnx_with_identical_outputs(mnist_small, tmp_path):
    import torch

    train, test = mnist_small
    net = train_classifier(train.x, train.y, epochs=1, seed=0, progress=False)
    acc = accuracy(net, test.x, test.y)
    assert acc > 0.3, acc                                # 16 steps on 2000 images: well above chance (0.1)
    path = export_classifier(net, tmp_path / "c.onnx", {"dataset": "mnist", "test_accuracy": "0.5"})
    clf = Classifier(path)
    assert clf.dataset == "mnist" and clf.metadata["test_accuracy"] == "0.5"
    for n in (1, 7):                                     # symbolic batch axis
        with torch.no_grad():
            logits, feats = net(torch.from_numpy(test.x[:n]))
        out = clf.predict(test.x[:n])
        np.testing.assert_allclose(out.logits, logits.numpy(), atol=1e-4, rtol=1e-4)
        np.testing.assert_allclose(out.features, feats.numpy(), atol=1e-4, rtol=1e-4)
        assert out.features.shape == (n, 128) and out.probs.shape == (n, 10)
    # uint8 and (N, H, W) inputs are the same images
    u8 = np.rint(test.x[:3, 0] * 255).astype(np.uint8)
    np.testing.assert_allclose(clf.predict(u8).logits, clf.predict(test.x[:3]).logits, atol=1e-4)


def test_training_is_deterministic_for_a_seed(mnist_small):
    import torch

    x, y = mnist_small[0].x[:256], mnist_small[0].y[:256]
    a = train_classifier(x, y, epochs=1, seed=3, progress=False)
    b = train_classifier(x, y, epochs=1, seed=3, progress=False)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_bad_inputs(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        Classifier(tmp_path / "missing.onnx")
    fx.write_identity_ae(tmp_path, "ident")   # an ONNX graph that is not a classifier
    with pytest.raises(ConfigError, match="outputs"):
        Classifier(tmp_path / "ident_encoder" / "1" / "model.onnx")
    with pytest.raises(ConfigError, match="no classifier"):
        default_classifier_path("cifar10")
    assert default_classifier_path("FMNIST") == default_classifier_path("fashion_mnist") \
        == default_classifier_path("fashion-mnist")
    with pytest.raises(InputError):
        train_classifier(np.zeros((4, 1, 28, 28), np.float32), np.array([0, 1, 2, 10]), progress=False)
    clf = Classifier(default_classifier_path("mnist"))
    for bad in (np.zeros((2, 1, 14, 14), np.float32), np.full((2, 1, 28, 28), 2.0, np.float32),
                np.full((1, 1, 28, 28), np.nan, np.float32), np.zeros((0, 1, 28, 28), np.float32)):
        with pytest.raises(InputError):
            clf.predict(bad)


def test_network_outputs_logits_and_features():
    import torch

    logits, feats = build_network()(torch.zeros(5, 1, 28, 28))
    assert logits.shape == (5, 10) and feats.shape == (5, 128)


@pytest.mark.parametrize("dataset,minimum", [("mnist", 0.98), ("fashion-mnist", 0.90)])
def test_shipped_classifiers_are_accurate(dataset, minimum):
    path = default_classifier_path(dataset)
    assert path.is_file(), f"{path} is not shipped; build it with `python -m aeserve.classifier {dataset}`"
    test = load_dataset(dataset, "test", limit=2000)
    clf = Classifier(path)
    assert clf.dataset == dataset
    assert np.mean(clf.predict(test.x).labels == test.y) >= minimum
    assert float(clf.metadata["test_accuracy"]) >= minimum        # full test set, measured at build time
