"""aeserve.prior: the Gaussian-mixture latent prior, its card form, checks, density and sampling."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from aeserve import noise
from aeserve.card import ModelCard
from aeserve.errors import CardError, InputError
from aeserve.prior import FINGERPRINT_KEY, PRIOR_KEY, LatentPrior, component_bytes


def make_prior(k: int = 3, d: int = 4, labels: bool = True, seed: int = 0) -> LatentPrior:
    rng = np.random.default_rng(seed)
    w = rng.random(k) + 0.1
    a = rng.standard_normal((k, d, d)) * 0.3
    cov = a @ a.transpose(0, 2, 1) + 0.5 * np.eye(d)
    return LatentPrior(w / w.sum(), rng.standard_normal((k, d)) * 3, np.linalg.cholesky(cov),
                       np.arange(k) % 2 if labels else None)


def card_with(prior: LatentPrior, d: int = 4) -> ModelCard:
    return ModelCard("ae", "mlp", (1, 8, 8), d, "bernoulli", "toy", {}).with_extra(**prior.card_entries())


def test_card_roundtrip_is_exact_in_float32_and_fingerprinted():
    p = make_prior()
    entries = p.card_entries()
    assert entries[FINGERPRINT_KEY] == hashlib.sha256(entries[PRIOR_KEY].encode()).hexdigest()
    q = LatentPrior.from_card(card_with(p))
    np.testing.assert_array_equal(q.means, p.means.astype(np.float32))
    np.testing.assert_array_equal(q.chol, p.chol.astype(np.float32))
    np.testing.assert_allclose(q.weights, p.weights)
    assert q.labels.tolist() == [0, 1, 0] and q.classes == (0, 1)
    assert q.to_json() == p.to_json()  # canonical: re-encoding gives the same string
    assert len(entries[PRIOR_KEY]) <= 3 * component_bytes(4) + 120  # + the fixed header


def test_card_without_prior_gives_none():
    assert LatentPrior.from_card(ModelCard("vae", "mlp", (1, 8, 8), 4, "bernoulli", "toy", {})) is None


def test_tampered_prior_fails_its_fingerprint():
    card = card_with(make_prior())
    doc = json.loads(card.get(PRIOR_KEY))
    doc["weights"][0] += 1e-3
    bad = card.with_extra(**{PRIOR_KEY: json.dumps(doc, separators=(",", ":"))})
    with pytest.raises(CardError, match="fingerprint"):
        LatentPrior.from_card(bad)


def _refingerprinted(card: ModelCard, doc: dict) -> ModelCard:
    text = json.dumps(doc, separators=(",", ":"))
    return card.with_extra(**{PRIOR_KEY: text, FINGERPRINT_KEY: hashlib.sha256(text.encode()).hexdigest()})


def test_non_positive_definite_factor_is_refused_even_with_a_valid_fingerprint():
    p = make_prior()
    chol = p.chol.copy()
    chol[1, 2, 2] = -0.5
    doc = json.loads(p.to_json())
    doc["chol"] = json.loads(LatentPrior(p.weights, p.means, np.abs(chol), p.labels).to_json())["chol"]
    ok = _refingerprinted(card_with(p), doc)
    LatentPrior.from_card(ok)  # abs(): a valid factor
    rows, cols = np.tril_indices(4)
    import base64
    doc["chol"] = base64.b64encode(chol[:, rows, cols].astype("<f4").tobytes()).decode()
    with pytest.raises(CardError, match="positive"):
        LatentPrior.from_card(_refingerprinted(card_with(p), doc))


@pytest.mark.parametrize("change, match", [
    (lambda d: d.update(weights=[0.5, 0.2, 0.2]), "sum to 1"),
    (lambda d: d.update(weights=[1.2, -0.1, -0.1]), "positive"),
    (lambda d: d.update(means=d["means"][:-8]), "floats"),
    (lambda d: d.update(kind="flow"), "prior"),
    (lambda d: d.pop("dim"), "missing"),
    (lambda d: d.update(labels=[0, 1]), "labels"),
])
def test_malformed_priors_raise_card_errors(change, match):
    p = make_prior()
    doc = json.loads(p.to_json())
    change(doc)
    with pytest.raises(CardError, match=match):
        LatentPrior.from_card(_refingerprinted(card_with(p), doc))


def test_non_finite_and_wrong_dim_priors_are_refused():
    p = make_prior()
    with pytest.raises(CardError, match="finite"):
        LatentPrior(p.weights, np.where(np.eye(3, 4) > 0, np.nan, p.means), p.chol)
    with pytest.raises(CardError, match="latent_dim"):
        LatentPrior.from_card(card_with(p, d=5).with_extra(**p.card_entries()))


@pytest.mark.parametrize("block", [None, 5])
def test_log_density_matches_a_direct_gaussian_mixture(block, monkeypatch):
    """Direct formula per component; ``block`` = 5 elements per step forces one row per step."""
    import aeserve.prior as prior_mod

    if block is not None:
        monkeypatch.setattr(prior_mod, "_BLOCK_ELEMENTS", block)
    p = make_prior(labels=False)
    z = np.random.default_rng(1).standard_normal((7, 4)) * 2
    want = np.zeros(7)
    for w, m, L in zip(p.weights, p.means, p.chol):
        cov = L @ L.T
        diff = z - m
        maha = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
        want += w * np.exp(-0.5 * maha) / np.sqrt((2 * np.pi) ** 4 * np.linalg.det(cov))
    np.testing.assert_allclose(p.log_density(z), np.log(want), rtol=1e-9)
    with pytest.raises(InputError):
        p.log_density(np.zeros((2, 3)))


def test_sampling_is_counter_based_and_follows_the_mixture():
    p = make_prior(k=3, labels=True)
    a = p.sample(3, 0, 8)
    b = p.sample(3, 0, 200)
    np.testing.assert_array_equal(a, b[:8])
    np.testing.assert_array_equal(p.sample(3, 57, 1), b[57:58])
    assert not np.array_equal(p.sample(4, 0, 8), a)
    # item i = mu_c + T * L_c eps_i with eps the standard normal rows of the same seed
    eps = noise.standard_normal(3, 0, 200, 4).astype(np.float64)
    resid = b.astype(np.float64)[:, None, :] - p.means[None]
    fit = [np.abs(np.linalg.solve(p.chol[k], resid[:, k].T).T - eps).max(1) for k in range(3)]
    assert np.all(np.min(fit, axis=0) < 1e-4)
    big = p.sample(0, 0, 20000)
    comp = np.argmin([np.abs(big - m).sum(1) for m in p.means], axis=0)
    np.testing.assert_allclose(np.bincount(comp, minlength=3) / 20000, p.weights, atol=0.02)


def _plain_mixture_draw(p: LatentPrior, eps: np.ndarray, temperature: float, label: int | None) -> np.ndarray:
    """The module docstring's draw written plainly: component by the normal quantiles of the
    cumulative weights of ``label``'s components, then ``mu_c + T * L_c eps`` in float64, to float32."""
    from statistics import NormalDist

    idx = np.arange(p.n_components) if label is None else np.flatnonzero(p.labels == label)
    w = p.weights[idx] / p.weights[idx].sum()
    cuts = np.array([NormalDist().inv_cdf(min(max(c, 1e-12), 1 - 1e-12)) for c in np.cumsum(w)[:-1]])
    e = eps.astype(np.float64)
    comp = idx[np.searchsorted(cuts, e[:, p.dim], side="right")]
    return (p.means[comp] + float(temperature) * np.einsum("nij,nj->ni", p.chol[comp], e[:, :p.dim])).astype(np.float32)


@pytest.mark.parametrize("temperature", [1.0, 0.7, 0.0])
@pytest.mark.parametrize("label", [None, 1])
@pytest.mark.parametrize("count", [1, 3, 300])
def test_mixture_draw_equals_the_plain_formula_bit_for_bit(temperature, label, count):
    p = make_prior(k=5, d=6, labels=True, seed=2)
    eps = noise.standard_normal(11, 40, count, p.dim + 1)
    got = p.sample_from_noise(eps, temperature=temperature, label=label)
    want = _plain_mixture_draw(p, eps, temperature, label)
    assert got.dtype == np.float32 and np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_temperature_and_labels():
    p = make_prior(k=3, labels=True)
    at_zero = p.sample(1, 0, 50, temperature=0.0)
    assert {tuple(r) for r in at_zero} <= {tuple(m) for m in p.means.astype(np.float32)}
    only1 = p.sample(1, 0, 50, temperature=0.0, label=1)
    np.testing.assert_array_equal(only1, np.repeat(p.means[1:2].astype(np.float32), 50, axis=0))
    assert p.resolve_label(1) == 1 and p.resolve_label("0") == 0
    assert p.resolve_label("odd", ["even", "odd"]) == 1
    for bad in (2, -1, "seven", 1.0, True):
        with pytest.raises(InputError, match="unknown"):
            p.resolve_label(bad, ["even", "odd"])
    with pytest.raises(InputError, match="no classes"):
        make_prior(labels=False).resolve_label(0)


def _direct_component_pdfs(p: LatentPrior, z: np.ndarray) -> np.ndarray:
    """w_k N(z; mu_k, L_k L_k^T) for every component, computed the textbook way: (N, K)."""
    d = p.dim
    out = []
    for w, m, L in zip(p.weights, p.means, p.chol):
        cov = L @ L.T
        diff = z - m
        maha = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
        out.append(w * np.exp(-0.5 * maha) / np.sqrt((2 * np.pi) ** d * np.linalg.det(cov)))
    return np.stack(out, axis=1)


def overlapping_prior() -> LatentPrior:
    """Two classes in 2-d whose components overlap: class 0 at (0, 0), class 1 at (2.5, 0) and (-4, 0)."""
    means = np.array([[0.0, 0.0], [2.5, 0.0], [-4.0, 0.0]])
    chol = np.repeat(np.eye(2)[None], 3, axis=0)
    return LatentPrior(np.array([0.5, 0.3, 0.2]), means, chol, np.array([0, 1, 1]))


def test_class_posterior_is_bayes_rule_over_the_mixture():
    p = overlapping_prior()
    z = np.random.default_rng(2).standard_normal((9, 2)) * 2
    pdf = _direct_component_pdfs(p, z)
    np.testing.assert_allclose(p.class_posterior(z, 1), pdf[:, 1:].sum(1) / pdf.sum(1), rtol=1e-9)
    np.testing.assert_allclose(p.class_posterior(z, 0) + p.class_posterior(z, 1), 1.0, rtol=1e-12)
    with pytest.raises(InputError, match="unknown label"):
        p.class_posterior(z, 2)
    with pytest.raises(InputError, match="no classes"):
        make_prior(labels=False).class_posterior(z[:, :1].repeat(4, 1), 0)


def test_labelled_draws_stay_in_their_class_region_and_stay_counter_based():
    from aeserve.prior import REGION_POSTERIOR, REGION_TRIES

    p = overlapping_prior()
    z = p.sample(5, 0, 400, label=1)
    np.testing.assert_array_equal(p.sample(5, 0, 17, label=1), z[:17])
    np.testing.assert_array_equal(p.sample(5, 123, 2, label=1), z[123:125])
    pdf = _direct_component_pdfs(p, z.astype(np.float64))
    post = pdf[:, 1:].sum(1) / pdf.sum(1)
    assert np.mean(post >= REGION_POSTERIOR) > 0.99  # a miss needs REGION_TRIES bad candidates in a row
    # each item is one of its own candidates: r-th slice of its noise row, drawn from class 1's components
    width = p.dim + 1
    eps = noise.standard_normal(5, 0, 400, width * REGION_TRIES)
    cands = np.stack([p.sample_from_noise(eps[:, r * width:(r + 1) * width], label=1) for r in range(REGION_TRIES)])
    cand_post = p.class_posterior(cands.reshape(-1, 2), 1).reshape(REGION_TRIES, 400)
    ok = cand_post >= REGION_POSTERIOR
    pick = np.where(ok.any(0), np.argmax(ok, 0), np.argmax(cand_post, 0))  # first qualifying, else the best
    np.testing.assert_array_equal(z, cands[pick, np.arange(400)])
    # candidate 0 is the unrestricted draw: where it already qualifies, nothing changes
    plain = cands[0]
    kept = p.class_posterior(plain, 1) >= REGION_POSTERIOR
    assert 0.4 < kept.mean() < 0.8  # the restriction really moves a share of the items
    np.testing.assert_array_equal(z[kept], plain[kept])
    # unconditional draws are not restricted
    np.testing.assert_array_equal(p.sample(5, 0, 50), p.sample_from_noise(noise.standard_normal(5, 0, 50, width)))
