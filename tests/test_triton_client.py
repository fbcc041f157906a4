"""``aeserve.Client`` against the real Triton server (``triton_server`` fixture) over HTTP and
gRPC, operation by operation, compared with the embedded runtime on the same inputs and
seeds (equal within 1e-5). Sizes exceed ``max_batch_size`` so splitting is exercised."""

from __future__ import annotations

import numpy as np
import pytest

from aeserve import Client
from aeserve.errors import ConfigError, InputError, ModelNotFoundError
from aeserve.repository import Repository

pytestmark = pytest.mark.triton
TOL = dict(rtol=1e-5, atol=1e-5)


def pick(repo_root, vae: bool) -> str:
    """A served model of the wanted kind: mnist_vae for VAEs if present; a DAE preferred otherwise."""
    repo = Repository(repo_root)
    names = repo.models()
    cards = {n: repo.model(n).card for n in names}
    if vae and "mnist_vae" in cards:
        return "mnist_vae"
    kinds = [n for n in names if cards[n].is_vae == vae]
    assert kinds, f"the served repository has no {'VAE' if vae else 'non-VAE'} model: {names}"
    dae = [n for n in kinds if cards[n].family == "dae"]
    return (dae or kinds)[0]


def images(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, 28, 28), dtype=np.float32)


@pytest.fixture(scope="module", params=["http", "grpc"])
def clients(request, triton_server, serving_repository):
    """(remote, embedded) clients for a VAE model; the protocol is the param."""
    url = triton_server.url_http if request.param == "http" else triton_server.url_grpc
    name = pick(serving_repository, vae=True)
    remote = Client(url, model=name, timeout=60)
    local = Client(None, model=name, repository=serving_repository)
    yield remote, local
    remote.close()
    local.close()


def n_over_max(client: Client) -> int:
    return client.max_batch_size + client.max_batch_size // 2 + 3


def test_models_and_cards_agree(clients, serving_repository):
    remote, local = clients
    got, want = remote.models(), local.models()
    assert sorted(got) == sorted(want) == Repository(serving_repository).models()
    assert all(got[n].to_dict() == want[n].to_dict() for n in got)
    assert remote.card.to_dict() == local.card.to_dict()
    assert remote.max_batch_size == local.max_batch_size and remote.version == local.version


def test_encode_decode_reconstruct(clients):
    remote, local = clients
    x = images(n_over_max(remote))
    np.testing.assert_allclose(remote.encode(x), local.encode(x), **TOL)
    np.testing.assert_allclose(remote.encode(x, posterior="sample", seed=3),
                               local.encode(x, posterior="sample", seed=3), **TOL)
    mu_r, lv_r = remote.encode_params(x)
    mu_l, lv_l = local.encode_params(x)
    np.testing.assert_allclose(mu_r, mu_l, **TOL)
    np.testing.assert_allclose(lv_r, lv_l, **TOL)
    z = np.random.default_rng(1).standard_normal((n_over_max(remote), remote.card.latent_dim)).astype(np.float32)
    out = remote.decode(z)
    assert out.shape == (len(z), *remote.card.input_shape) and out.dtype == np.float32
    np.testing.assert_allclose(out, local.decode(z), **TOL)
    np.testing.assert_allclose(remote.reconstruct(x), local.reconstruct(x), **TOL)
    np.testing.assert_allclose(remote.reconstruct(x, posterior="sample", seed=5),
                               local.reconstruct(x, posterior="sample", seed=5), **TOL)


def test_generate_interpolate_traverse(clients):
    remote, local = clients
    n = n_over_max(remote)
    g = remote.generate(n, seed=7, temperature=0.8)
    assert g.shape == (n, *remote.card.input_shape)
    np.testing.assert_allclose(g, local.generate(n, seed=7, temperature=0.8), **TOL)
    # item i depends only on (seed, i): a prefix is the same whatever n is
    np.testing.assert_allclose(remote.generate(5, seed=7, temperature=0.8), g[:5], **TOL)
    a, b = images(2, seed=2)
    for method in ("slerp", "lerp"):
        np.testing.assert_allclose(remote.interpolate(a, b, steps=6, method=method),
                                   local.interpolate(a, b, steps=6, method=method), **TOL)
    pts = images(3, seed=4)
    np.testing.assert_allclose(remote.interpolate_path(pts, steps=4), local.interpolate_path(pts, steps=4), **TOL)
    np.testing.assert_allclose(remote.traverse(a, dim=0, values=[-2, 0, 2]),
                               local.traverse(a, dim=0, values=[-2, 0, 2]), **TOL)


def test_anomaly_scores_calibration_and_flags(clients):
    remote, local = clients
    x = images(n_over_max(remote), seed=8)
    np.testing.assert_allclose(remote.anomaly_score(x), local.anomaly_score(x), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(remote.anomaly_score(x[:40], method="elbo", k=8, seed=1),
                               local.anomaly_score(x[:40], method="elbo", k=8, seed=1), rtol=1e-5)
    assert remote.calibrate(x, quantile=0.9) == pytest.approx(local.calibrate(x, quantile=0.9), rel=1e-5)
    flags = remote.is_anomaly(x)
    assert flags.dtype == bool and flags.shape == (len(x),)
    np.testing.assert_array_equal(flags, local.is_anomaly(x))


def test_compress_roundtrip_is_interchangeable(clients):
    remote, local = clients
    x = images(n_over_max(remote), seed=9)
    blob_r, blob_l = remote.compress(x), local.compress(x)
    assert isinstance(blob_r, bytes) and blob_r == blob_l
    np.testing.assert_allclose(remote.decompress(blob_l), local.decompress(blob_r), **TOL)


def test_deterministic_model_operations(clients, serving_repository):
    remote_vae, local_vae = clients
    name = pick(serving_repository, vae=False)
    remote, local = remote_vae.with_model(name), local_vae.with_model(name)
    try:
        x = images(n_over_max(remote), seed=10)
        np.testing.assert_allclose(remote.encode(x), local.encode(x), **TOL)
        np.testing.assert_allclose(remote.denoise(x), local.denoise(x), **TOL)
        np.testing.assert_allclose(remote.generate(50, seed=1), local.generate(50, seed=1), **TOL)
        np.testing.assert_allclose(remote.anomaly_score(x), local.anomaly_score(x), rtol=1e-5, atol=1e-8)
        with pytest.raises(InputError, match="needs a VAE"):
            remote.encode_params(x)
        with pytest.raises(ConfigError, match="needs a VAE"):
            remote.anomaly_score(x, method="elbo")
    finally:
        remote.close()
        local.close()


def test_typed_errors_over_the_wire(clients):
    remote, _ = clients
    with pytest.raises(ModelNotFoundError, match="available"):
        remote.with_model("no_such_model")
    with pytest.raises(InputError):
        remote.decode(np.zeros((3, remote.card.latent_dim + 1), np.float32))
    with pytest.raises(InputError):
        remote.generate(0)
    assert remote.generate(2, seed=0).shape[0] == 2  # still usable afterwards
