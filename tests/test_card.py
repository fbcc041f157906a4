"""ModelCard value encoding (the rest of the card is exercised through checkpoint/export tests)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aeserve.card import ModelCard, encode_value
from aeserve.errors import CardError


@pytest.mark.parametrize("value, expected", [
    ("x", "x"), (True, "true"), (3, "3"), (0.1, "0.1"), ([1, 2.5], "[1,2.5]"), ({"a": 1}, '{"a":1}'),
    (np.float32(0.5), "0.5"), (np.int64(7), "7"), (np.bool_(False), "false"),
    (np.array([1.0, 2.0]), "[1.0,2.0]"), (torch.tensor(0.25), "0.25"), (torch.tensor([1, 2]), "[1,2]"),
])
def test_encode_value(value, expected):
    assert encode_value(value) == expected


def test_encode_value_refuses_other_objects():
    with pytest.raises(CardError, match="cannot store object in a model card"):
        encode_value(object())


def test_with_extra_sets_and_removes_keys():
    card = ModelCard("ae", "mlp", (4,), 2, "bernoulli", "t").with_extra(metrics__test_mse=np.float32(0.5))
    assert card.metrics == {"test_mse": 0.5}
    assert card.with_extra(**{"metrics.test_mse": None}).metrics == {}


def test_class_names_round_trip_and_checks():
    card = ModelCard("ae", "mlp", (4,), 2, "bernoulli", "pets")
    assert card.class_names is None
    named = card.with_extra(class_names=["cat", "dog"])
    assert named.to_dict()["aeserve.class_names"] == '["cat","dog"]'
    assert ModelCard.from_dict(named.to_dict()).class_names == ("cat", "dog")
    with pytest.raises(CardError, match="class_names must be a JSON list of strings"):
        card.with_extra(class_names='{"a": 1}').class_names
    with pytest.raises(CardError, match="class_names must be a JSON list of strings"):
        card.with_extra(class_names=[1, 2]).class_names


def test_sigma_falls_back_to_the_default_once():
    from aeserve.card import DEFAULT_SIGMA

    card = ModelCard("vae", "mlp", (1, 28, 28), 16, "gaussian", "mnist", {})
    assert card.sigma == DEFAULT_SIGMA == 0.1
    assert card.with_extra(hparams={"sigma": 0.25}).sigma == 0.25
