"""aeserve.classifier: the reference classifier's inference errors and the shipped files."""

from __future__ import annotations

import eval_fixtures as fx
import numpy as np
import pytest

from aeserve.classifier import Classifier, classifier_filename, default_classifier_path
from aeserve.data import load_dataset
from aeserve.errors import ConfigError, InputError


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
    assert classifier_filename("MNIST") == "mnist_classifier.onnx"
    clf = Classifier(default_classifier_path("mnist"))
    for bad in (np.zeros((2, 1, 14, 14), np.float32), np.full((2, 1, 28, 28), 2.0, np.float32),
                np.full((1, 1, 28, 28), np.nan, np.float32), np.zeros((0, 1, 28, 28), np.float32)):
        with pytest.raises(InputError):
            clf.predict(bad)


@pytest.mark.parametrize("dataset,minimum", [("mnist", 0.98), ("fashion-mnist", 0.90)])
def test_shipped_classifiers_are_accurate(dataset, minimum):
    path = default_classifier_path(dataset)
    assert path.is_file(), f"{path} is not shipped; build it with `aeserve build-classifier {dataset}`"
    test = load_dataset(dataset, "test", limit=2000)
    clf = Classifier(path)
    assert clf.dataset == dataset
    assert np.mean(clf.predict(test.x).labels == test.y) >= minimum
    assert float(clf.metadata["test_accuracy"]) >= minimum        # full test set, measured at build time
