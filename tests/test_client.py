"""aeserve.Client over the embedded runtime: operations, seeds, batching, compression.

Uses a repository of untrained models (tests/_repo_fixtures.py) with max_batch_size 8,
so every call below with more than 8 items is split and reassembled.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from _repo_fixtures import MAX_BATCH, images

import aeserve
from aeserve import anomaly, noise
from aeserve.errors import CardError, InputError, PayloadError


@pytest.fixture(scope="module")
def vae(client_repo):
    with aeserve.Client(repository=client_repo, model="t_vae") as c:
        yield c


@pytest.fixture(scope="module")
def ae(vae):
    with vae.with_model("t_ae") as c:
        yield c


def _rebatched(client, max_batch):
    """The same client but splitting into chunks of ``max_batch`` (runtime unchanged)."""
    other = client.with_model(client.model)
    other._info = dataclasses.replace(other._info, max_batch_size=max_batch)
    return other


def test_default_model_and_listing(client_repo, monkeypatch):
    monkeypatch.delenv("AESERVE_URL", raising=False)
    with aeserve.Client(repository=client_repo) as c:
        assert c.model == "t_ae"  # no mnist_vae here: the first model
        assert sorted(c.models()) == ["t_ae", "t_vae"]
        assert c.models()["t_vae"].family == "vae"
        assert (c.max_batch_size, c.version) == (MAX_BATCH, 1)
        assert "t_ae" in repr(c)


def test_generate_same_seed_same_images(vae):
    a = vae.generate(n=8, seed=3)
    b = vae.generate(n=100, seed=3)
    assert a.shape == (8, 1, 28, 28) and a.dtype == np.float32 and b.shape == (100, 1, 28, 28)
    np.testing.assert_array_equal(a, b[:8])
    assert 0 <= b.min() and b.max() <= 1
    assert not np.array_equal(vae.generate(n=8, seed=4), a)
    # item i is decode(standard_normal(seed, i) * T)
    np.testing.assert_allclose(b[37:38], vae.decode(noise.standard_normal(3, 37, 1, 16)), atol=1e-6)


def test_generate_independent_of_chunking_and_concurrency(client_repo, vae):
    ref = vae.generate(n=21, seed=5, temperature=0.7)
    with aeserve.Client(repository=client_repo, model="t_vae", max_in_flight=1) as serial:
        np.testing.assert_array_equal(serial.generate(n=21, seed=5, temperature=0.7), ref)
    with _rebatched(vae, 3) as small:
        np.testing.assert_allclose(small.generate(n=21, seed=5, temperature=0.7), ref, atol=1e-6)


def test_temperature_scales_the_latent(vae):
    zero = vae.generate(n=3, seed=1, temperature=0.0)
    np.testing.assert_allclose(zero, np.repeat(vae.decode(np.zeros((1, 16))), 3, axis=0), atol=1e-6)
    half = vae.generate(n=2, seed=1, temperature=0.5)
    np.testing.assert_allclose(half, vae.decode(0.5 * noise.standard_normal(1, 0, 2, 16)), atol=1e-6)


def test_encode_decode_reconstruct(vae, ae):
    x = images(19)
    mu, logvar = vae.encode_params(x)
    assert mu.shape == logvar.shape == (19, 16)
    np.testing.assert_array_equal(vae.encode(x), mu)
    np.testing.assert_allclose(vae.reconstruct(x), vae.decode(mu), atol=1e-6)
    assert vae.reconstruct(x).shape == (19, 1, 28, 28)
    assert ae.encode(x).shape == (19, 2)
    np.testing.assert_allclose(ae.denoise(x), ae.decode(ae.encode(x)), atol=1e-6)
    # uint8 and (N, H, W) inputs are accepted and mean the same thing
    x8 = (np.rint(x * 255)).astype(np.uint8)
    np.testing.assert_allclose(ae.encode(x8[:, 0]), ae.encode(x8.astype(np.float32) / 255), atol=1e-6)


def test_posterior_sample_is_seeded_per_item(vae):
    x = images(20)
    s = vae.encode(x, posterior="sample", seed=7)
    np.testing.assert_array_equal(s[:5], vae.encode(x[:5], posterior="sample", seed=7))
    np.testing.assert_array_equal(s, vae.encode(x, posterior="sample", seed=7))
    assert not np.allclose(s, vae.encode(x, posterior="sample", seed=8))
    mu, logvar = vae.encode_params(x)
    eps = noise.standard_normal(7, 0, 20, 16)
    np.testing.assert_allclose(s, mu + np.exp(logvar / 2) * eps, rtol=1e-5, atol=1e-6)
    r = vae.reconstruct(x, posterior="sample", seed=7)
    np.testing.assert_allclose(r, vae.decode(s), atol=1e-6)


def test_interpolate_path_traverse(vae, ae):
    x = images(3)
    line = vae.interpolate(x[0], x[1], steps=5)
    assert line.shape == (5, 1, 28, 28)
    ends = vae.reconstruct(x[:2])
    np.testing.assert_allclose(line[[0, -1]], ends, atol=1e-6)
    lerp = vae.interpolate(x[0, 0], x[1:2], steps=5, method="lerp")  # (H, W) and (1, C, H, W) both fine
    np.testing.assert_allclose(lerp[[0, -1]], ends, atol=1e-6)
    path = vae.interpolate_path(x, steps=4)
    assert path.shape == ((4 - 1) * 2 + 1, 1, 28, 28)
    np.testing.assert_allclose(path[[0, 3, 6]], vae.reconstruct(x), atol=1e-6)
    t = ae.traverse(x[0], dim=1, values=[-2, 0, 2])
    z = ae.encode(x[:1])[0]
    np.testing.assert_allclose(t, ae.decode(np.array([[z[0], v] for v in (-2, 0, 2)])), atol=1e-6)


def test_anomaly_scores(vae, ae):
    x = images(13)
    mse = ae.anomaly_score(x)
    assert mse.shape == (13,) and mse.dtype == np.float64
    np.testing.assert_allclose(mse, anomaly.mse_score(x, ae.reconstruct(x)), rtol=1e-6)
    elbo = vae.anomaly_score(x, method="elbo", k=4, seed=1)
    assert elbo.shape == (13,) and np.all(np.isfinite(elbo)) and np.all(elbo > 0)
    # sample j of item i depends only on (seed, i, j): prefix and chunking do not matter
    np.testing.assert_allclose(vae.anomaly_score(x[:3], method="elbo", k=4, seed=1), elbo[:3], rtol=1e-6)
    with _rebatched(vae, 3) as small:
        np.testing.assert_allclose(small.anomaly_score(x, method="elbo", k=4, seed=1), elbo, rtol=1e-6)
    # K=1 by hand: -log p(x | decode(mu + sigma*eps)) + KL
    mu, logvar = vae.encode_params(x)
    eps = noise.standard_normal(2, 0, 13, 16)
    x_hat = vae.decode(mu + np.exp(logvar / 2) * eps)
    by_hand = anomaly.neg_elbo(x, x_hat[None], mu, logvar, "bernoulli")
    np.testing.assert_allclose(vae.anomaly_score(x, method="elbo", k=1, seed=2), by_hand, rtol=1e-5)


def test_calibrate_and_is_anomaly(client_repo):
    with aeserve.Client(repository=client_repo, model="t_ae") as c:
        x = images(40)
        card_thr = c.card.get_float("anomaly.threshold")
        assert card_thr == 0.05
        np.testing.assert_array_equal(c.is_anomaly(x), c.anomaly_score(x) > card_thr)
        thr = c.calibrate(x, quantile=0.5)
        assert thr == pytest.approx(float(np.quantile(c.anomaly_score(x), 0.5)))
        flags = c.is_anomaly(x)
        assert flags.dtype == bool and 15 <= flags.sum() <= 25
        c2 = c.with_model("t_ae")
        c2.card = c2.card.with_extra(**{"anomaly.threshold": None})
        with pytest.raises(CardError, match="calibrate"):
            c2.is_anomaly(x)
        c2.close()


def test_compress_roundtrip_and_checks(vae, ae):
    x = images(30)
    blob = vae.compress(x)
    assert isinstance(blob, bytes) and len(blob) < x.size  # far smaller than raw 8-bit pixels
    y = vae.decompress(blob)
    assert y.shape == x.shape
    psnr = lambda a: 10 * np.log10(1 / np.mean((a - x) ** 2))  # noqa: E731
    assert abs(psnr(y) - psnr(vae.reconstruct(x))) < 0.5
    with pytest.raises(PayloadError):
        ae.decompress(blob)                       # other model
    bad = bytearray(blob)
    bad[len(bad) // 2] ^= 0x10
    with pytest.raises(PayloadError):
        vae.decompress(bytes(bad))                # bit flip
    with pytest.raises(PayloadError):
        vae.decompress(blob[:-3])                 # truncated
    with pytest.raises(PayloadError):
        vae.decompress(b"\x89PNG\r\n\x1a\n" + bytes(40))  # foreign
    with pytest.raises(PayloadError, match="bytes"):
        vae.decompress("not bytes")


def test_progress_callback(client_repo):
    seen = []
    with aeserve.Client(repository=client_repo, model="t_vae", progress=lambda d, t: seen.append((d, t))) as c:
        c.generate(n=20, seed=0)
    assert seen[-1] == (20, 20) and len(seen) == 3


def test_with_model_shares_connection_and_close(client_repo):
    c = aeserve.Client(repository=client_repo, model="t_vae")
    other = c.with_model("t_ae")
    assert other.runtime is c.runtime and other.model == "t_ae"
    c.close()
    c.close()  # idempotent
    assert other.decode(np.zeros((2, 2))).shape == (2, 1, 28, 28)  # still open: the sibling holds it
    other.close()


def test_client_path_without_torch(client_repo):
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None          # any `import torch` now fails
        import aeserve
        c = aeserve.Client(repository={str(client_repo)!r}, model="t_vae")
        x = c.generate(n=10, seed=0)
        b = c.compress(x); y = c.decompress(b)
        c.anomaly_score(x, method="elbo", k=2); c.interpolate(x[0], x[1], steps=3)
        assert x.shape == y.shape == (10, 1, 28, 28)
        assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules if sys.modules[m] is not None)
        print("ok")
    """)
    env = {k: v for k, v in os.environ.items() if k != "AESERVE_URL"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]


def test_acceptance_default_client_on_shipped_repository_without_torch(shipped_repository):
    """The README's promise: a fresh ``aeserve.Client()`` in the project generates images, no torch."""
    assert (shipped_repository / "mnist_vae_encoder").is_dir(), "the shipped model_repository has no mnist_vae"
    code = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None
        import aeserve
        c = aeserve.Client()
        x = c.generate(n=16)
        y = c.generate(n=100, seed=0)
        assert (x == y[:16]).all()
        print(c.model, x.shape, x.dtype)
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("AESERVE_URL", "AESERVE_REPOSITORY")}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                         cwd=shipped_repository.parent)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "mnist_vae (16, 1, 28, 28) float32"


def test_threads_knob_sets_requests_in_flight_and_ort_threads(client_repo):
    with aeserve.Client(repository=client_repo, model="t_vae", threads=3) as c:
        assert c._conn.batcher.max_in_flight == 3 and c.runtime._intra == 1
        z = c.generate(40, seed=1)
    with aeserve.Client(repository=client_repo, model="t_vae", threads=4, max_in_flight=2) as c:
        assert c._conn.batcher.max_in_flight == 2 and c.runtime._intra == 2
        assert np.array_equal(c.generate(40, seed=1), z)
    with pytest.raises(InputError, match="threads must be an integer >= 1 or None"):
        aeserve.Client(repository=client_repo, threads=0)


def _public_methods(cls) -> list[str]:
    import inspect

    return sorted(n for n, v in inspect.getmembers(cls) if not n.startswith("_") and inspect.isfunction(v))


def test_closed_client_refuses_every_public_call(client_repo):
    """Every public method (new mixins included), whatever its arguments: ClientClosedError,
    and no thread pool is started by a call after close."""
    import threading

    from aeserve.errors import ClientClosedError

    c = aeserve.Client(repository=client_repo, model="t_vae", max_in_flight=2)
    c.generate(20)                                   # multi-chunk: the pool exists
    c.close()
    before = threading.active_count()
    methods = [m for m in _public_methods(aeserve.Client) if m != "close"]
    assert {"generate", "decode", "with_model", "models", "decompress"} <= set(methods)
    for name in methods:
        with pytest.raises(ClientClosedError, match="closed"):
            getattr(c, name)()
    with pytest.raises(ClientClosedError):
        c.generate(100, seed=0)                      # many chunks: refused before any pool work
    with pytest.raises(ClientClosedError):
        c.with_model("t_ae")
    with pytest.raises(ClientClosedError):
        with c:
            pass
    assert threading.active_count() <= before
    c.close()                                        # still idempotent


def test_with_model_needs_a_name(client_repo):
    from aeserve.errors import InputError

    with aeserve.Client(repository=client_repo, model="t_vae") as c:
        for bad in (None, 3, ["t_ae"]):
            with pytest.raises(InputError, match="with_model needs a model name"):
                c.with_model(bad)
