"""Client.features and Client.classify (embedded) on hand-built models."""

from __future__ import annotations

import numpy as np
import pytest
from apps_helpers import CLASSES, CLASSIFIER_W, restoration_repository
from eval_fixtures import write_prior_vae

from aeserve import Client
from aeserve.errors import InputError, ModelNotFoundError
from aeserve.metrics import softmax


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = restoration_repository(tmp_path_factory.mktemp("features") / "repo")
    write_prior_vae(root, "prior")
    with Client(repository=root, model="prior") as c:
        yield c


def test_features_are_the_encoders_code(client):
    x = np.random.default_rng(0).random((7, 1, 28, 28), dtype=np.float32)
    f = client.features(x)
    assert f.shape == (7, client.card.latent_dim) and np.array_equal(f, client.encode(x))


def test_classify_runs_the_named_classifier_and_splits_batches(client):
    x = np.random.default_rng(1).random((40, 1, 28, 28), dtype=np.float32)  # max_batch_size 16
    p = client.classify(x, classifier="t_ident")
    assert p.shape == (40, len(CLASSES))
    assert np.allclose(p, softmax(x.reshape(40, -1).astype(np.float64) @ CLASSIFIER_W), atol=1e-5)
    card = client.classifier_card("t_ident")
    assert card.class_names == tuple(CLASSES)
    assert client.runtime.classifiers() == ["t_ident"]


def test_classify_errors(client):
    x = np.zeros((2, 1, 28, 28), np.float32)
    with pytest.raises(ModelNotFoundError, match="t_ident_classifier"):
        client.classify(x)                      # no prior_classifier; the message lists what exists
    with pytest.raises(InputError):
        client.classify(np.zeros((2, 3, 28, 28), np.float32), classifier="t_ident")
    with pytest.raises(InputError):
        client.classify(x, classifier=3)
    with pytest.raises(ModelNotFoundError):
        client.class_names
