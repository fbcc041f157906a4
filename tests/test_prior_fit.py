"""aeserve.prior_fit: component choice by held-out likelihood within the card budget."""

from __future__ import annotations

import numpy as np
import pytest

from aeserve.errors import InputError
from aeserve.prior import component_bytes
from aeserve.prior_fit import fit_prior


def blobs(n_per: int, centres, seed: int = 0, scale: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(c, scale, (n_per, len(c))) for c in centres])


def test_held_out_likelihood_finds_the_clusters():
    centres = [(-4, 0), (4, 0), (0, 5), (0, -5)]
    prior, report = fit_prior(blobs(100, centres), budget_bytes=64 * component_bytes(2))
    assert prior.n_components >= 4 and prior.labels is None
    scores = report["per_class"]["all"]["heldout_loglik"]
    assert scores[str(prior.n_components)] == max(scores.values()) > scores["1"]
    assert report["card_bytes"] == len(prior.to_json()) <= 64 * component_bytes(2) + 200


def test_budget_bounds_the_components_per_class():
    z = blobs(100, [(-4, 0), (4, 0), (0, 5), (0, -5)])
    y = np.repeat([0, 1], 200)
    prior, report = fit_prior(z, y, budget_bytes=2 * 2 * component_bytes(2))
    assert report["k_max"] == 2 and prior.n_components <= 4 and prior.classes == (0, 1)
    np.testing.assert_allclose([prior.weights[prior.labels == c].sum() for c in (0, 1)], [0.5, 0.5])
    with pytest.raises(InputError, match="cannot hold one component"):
        fit_prior(z, y, budget_bytes=component_bytes(2))


@pytest.mark.parametrize("codes, labels, match", [
    (np.zeros((5, 2)), None, "N >= 20"),
    (np.full((40, 2), np.nan), None, "finite"),
    (np.zeros(40), None, "N >= 20"),
    (np.random.default_rng(0).random((40, 2)), np.zeros(39, int), "labels"),
    (np.random.default_rng(0).random((40, 2)), np.r_[np.zeros(35, int), np.ones(5, int)], "fewer than"),
])
def test_bad_codes_and_labels(codes, labels, match):
    with pytest.raises(InputError, match=match):
        fit_prior(codes, labels)
