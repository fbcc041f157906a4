"""aeserve.models: the five families x two architectures, and the math of each regulariser."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from aeserve.card import ModelCard
from aeserve.errors import ConfigError
from aeserve.models import REGISTRY, build_model
from aeserve.models.contractive import jacobian_frobenius_sq
from aeserve.models.dae import corrupt
from aeserve.models.vae import kl_to_standard_normal

FAMILIES = ("ae", "dae", "sparse", "contractive", "vae")
SMALL = {"hidden": [32], "channels": [4, 8], "dense": 16}


def card(family: str, arch: str = "mlp", latent: int = 3, shape=(1, 8, 8), likelihood="bernoulli", **hp) -> ModelCard:
    import json

    return ModelCard(family, arch, shape, latent, likelihood, "test", {"hparams": json.dumps({**SMALL, **hp})})


def test_registry_has_the_five_families():
    assert set(FAMILIES) <= set(REGISTRY)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("latent", [1, 2, 5])
def test_shapes_ranges_and_deterministic_eval(family, arch, latent):
    torch.manual_seed(0)
    m = build_model(card(family, arch, latent)).eval()
    x = torch.rand(6, 1, 8, 8)
    with torch.no_grad():
        out = m.encoder(x)
    if family == "vae":
        assert isinstance(out, tuple) and len(out) == 2
        assert all(t.shape == (6, latent) for t in out)
        z = out[0]
    else:
        assert isinstance(out, torch.Tensor) and out.shape == (6, latent)
        z = out
    with torch.no_grad():
        x_hat = m.decoder(z)
    assert x_hat.shape == x.shape
    assert float(x_hat.min()) >= 0.0 and float(x_hat.max()) <= 1.0
    with torch.no_grad():
        torch.testing.assert_close(torch.sigmoid(m.decoder.logits(z)), x_hat)
        # no randomness in eval mode: encoder, decoder and the full forward repeat exactly
        torch.manual_seed(1)
        a = m(x)
        torch.manual_seed(2)
        assert torch.equal(a, m(x))
    loss, parts = m.train().loss(x)
    assert loss.ndim == 0 and math.isfinite(loss.item()) and "recon" in parts


def test_hparams_defaults_merged_into_card():
    m = build_model(card("vae", beta=4.0))
    assert m.hparams["beta"] == 4.0 and m.card.hparams["beta"] == 4.0 and m.card.hparams["hidden"] == [32]
    assert build_model(card("dae")).hparams["noise"] == "gaussian"


@pytest.mark.parametrize("bad, match", [
    (dict(family="ae", arch="conv", shape=(1, 10, 10)), "divisible by 4"),
    (dict(family="ae", arch="conv", shape=(784,)), "needs image input"),
    (dict(family="dae", noise="salt"), "unknown noise 'salt'"),
    (dict(family="dae", noise="masking", noise_level=1.5), "out of range"),
    (dict(family="ae", hidden=[0]), "positive"),
])
def test_bad_architecture_or_hparams_raise_config_error(bad, match):
    with pytest.raises(ConfigError, match=match):
        build_model(card(**bad))


# ---- contractive ---------------------------------------------------------------------

def test_contractive_penalty_matches_finite_difference_jacobian():
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    x = torch.randn(3, 5, dtype=torch.float64)
    frob, z = jacobian_frobenius_sq(enc, x)
    torch.testing.assert_close(z, enc(x))
    h = 1e-6
    for n in range(x.shape[0]):
        cols = []
        for j in range(x.shape[1]):
            e = torch.zeros(5, dtype=torch.float64)
            e[j] = h
            cols.append((enc(x[n] + e) - enc(x[n] - e)) / (2 * h))
        jac = torch.stack(cols, dim=1)  # (3, 5)
        assert frob[n].item() == pytest.approx(jac.pow(2).sum().item(), rel=1e-7)


def test_contractive_loss_adds_lam_times_jacobian_norm_and_is_differentiable():
    torch.manual_seed(0)
    m = build_model(card("contractive", lam=0.3)).double().train()
    x = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    torch.manual_seed(5)
    loss, parts = m.loss(x)
    frob, _ = jacobian_frobenius_sq(m.encoder, x)
    assert parts["contractive"] == pytest.approx(0.3 * frob.mean().item(), rel=1e-9)
    loss.backward()  # second-order graph exists
    assert all(p.grad is not None for p in m.encoder.parameters())
    with torch.no_grad():  # validation: same objective, detached
        _, parts_ng = m.loss(x)
    assert parts_ng["contractive"] == pytest.approx(parts["contractive"], rel=1e-9)
    _, eval_parts = m.eval().loss(x)
    assert "contractive" not in eval_parts


# ---- VAE -----------------------------------------------------------------------------

def test_kl_matches_closed_form_and_monte_carlo():
    torch.manual_seed(0)
    mu = torch.randn(3, 4, dtype=torch.float64)
    logvar = torch.randn(3, 4, dtype=torch.float64) * 0.5
    kl = kl_to_standard_normal(mu, logvar)
    var = logvar.exp()
    closed = 0.5 * (var + mu**2 - 1 - torch.log(var)).sum(1)
    torch.testing.assert_close(kl, closed)
    # torch.distributions agrees
    q = torch.distributions.Normal(mu, var.sqrt())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    torch.testing.assert_close(kl, torch.distributions.kl_divergence(q, p).sum(1))
    # Monte-Carlo estimate E_q[log q(z) - log p(z)]
    g = torch.Generator().manual_seed(1)
    z = mu + var.sqrt() * torch.randn((200_000, *mu.shape), generator=g, dtype=torch.float64)
    mc = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean(0)
    torch.testing.assert_close(mc, kl, rtol=0.02, atol=0.01)


def test_kl_is_zero_when_posterior_equals_prior():
    z = torch.zeros(5, 7)
    assert torch.equal(kl_to_standard_normal(z, z), torch.zeros(5))


def test_vae_loss_is_recon_plus_beta_kl_and_samples_only_in_training():
    torch.manual_seed(0)
    m = build_model(card("vae", beta=2.5)).double()
    x = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    mu, logvar = m.encoder(x)
    _, parts = m.train().loss(x)
    assert parts["kl"] == pytest.approx(2.5 * kl_to_standard_normal(mu, logvar).mean().item(), rel=1e-9)
    z_eval, _ = m.eval().code(x)
    assert torch.equal(z_eval, mu)
    torch.manual_seed(3)
    z_train, _ = m.train().code(x)
    assert not torch.equal(z_train, mu)


# ---- DAE -----------------------------------------------------------------------------

def test_dae_corrupts_only_in_train_mode():
    torch.manual_seed(0)
    m = build_model(card("dae", noise="gaussian", noise_level=0.5))
    x = torch.rand(8, 1, 8, 8)
    assert not torch.equal(m.train().corrupt(x), x)
    assert torch.equal(m.eval().corrupt(x), x)
    m2 = build_model(card("dae", noise="masking", noise_level=0.5)).train()
    y = m2.corrupt(x)
    kept = y != 0
    assert torch.equal(y[kept], x[kept]) and 0.3 < float(kept.float().mean()) < 0.7


def test_corrupt_function_levels_and_range():
    g = torch.Generator().manual_seed(0)
    x = torch.full((1000, 10), 0.5)
    y = corrupt(x, "gaussian", 0.1, generator=g)
    assert float(y.min()) >= 0 and float(y.max()) <= 1
    assert float((y - x).std()) == pytest.approx(0.1, rel=0.05)
    assert torch.equal(corrupt(x, "gaussian", 0.0), x)
    with pytest.raises(ConfigError, match="expected one of gaussian, masking"):
        corrupt(x, "pepper", 0.1)


# ---- sparse --------------------------------------------------------------------------

def test_sparse_penalty_is_lam_times_l1_of_code():
    torch.manual_seed(0)
    m = build_model(card("sparse", lam=0.2)).train()
    x = torch.rand(5, 1, 8, 8)
    z, pen = m.code(x)
    torch.testing.assert_close(pen["l1"], 0.2 * z.abs().sum(1))
    torch.testing.assert_close(z, m.encoder(x))


def test_gaussian_likelihood_is_scaled_mse():
    torch.manual_seed(0)
    m = build_model(card("ae", likelihood="gaussian", sigma=0.5))
    x = torch.rand(3, 1, 8, 8)
    logits = torch.randn(3, 1, 8, 8)
    expected = (0.5 * ((torch.sigmoid(logits) - x) / 0.5) ** 2).flatten(1).sum(1)
    torch.testing.assert_close(m.recon_nll(logits, x), expected)
