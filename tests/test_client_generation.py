"""Client generation with a fitted prior, latent arithmetic and density scores (embedded runtime).

A copy of the untrained test repository gets a prior fitted by ``aeserve.prior_fit`` on the
codes of 250 labelled blob images (10 classes), written as a new version by ``aeserve.export.recard``: the
same path ``aeserve fit-prior`` takes.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from _repo_fixtures import images, labelled_npz

import aeserve
from aeserve.errors import CardError, ConfigError, InputError, PriorMissingError
from aeserve.prior import LatentPrior


@pytest.fixture(scope="module")
def prior_repo(client_repo, tmp_path_factory):  # noqa: F811
    from aeserve.export.recard import write_card_version
    from aeserve.prior_fit import fit_model_prior

    root = tmp_path_factory.mktemp("prior_repo") / "repo"
    shutil.copytree(client_repo, root)
    with aeserve.Client(repository=root, model="t_ae") as c:
        entries, report = fit_model_prior(c, str(labelled_npz(root.parent / "data.npz")), budget_bytes=4096)
    assert write_card_version(root, "t_ae", entries) == 2
    assert report["components"] >= 10 and report["card_bytes"] <= 4096
    return root


@pytest.fixture(scope="module")
def ae(prior_repo):
    with aeserve.Client(repository=prior_repo, model="t_ae") as c:
        yield c


def test_new_version_carries_the_prior_and_keeps_the_graphs(prior_repo, client_repo):  # noqa: F811
    import onnx

    from aeserve.repository import Repository

    m = Repository(prior_repo).model("t_ae")
    assert m.versions == (1, 2) and m.card.get("prior.sha256")
    meta = {p.key: p.value for p in onnx.load(m.decoder_path(2)).metadata_props}
    assert meta["aeserve.prior"] == m.card.get("prior")
    assert m.decoder_path(1).read_bytes() == (client_repo / "t_ae_decoder" / "1" / "model.onnx").read_bytes()
    old, new = onnx.load(m.decoder_path(1)), onnx.load(m.decoder_path(2))
    assert old.graph.SerializeToString() == new.graph.SerializeToString()


def test_fitted_generate_is_the_default_and_counter_based(ae):
    p = ae.prior
    assert isinstance(p, LatentPrior) and p.classes == tuple(range(10))
    a = ae.generate(8, seed=3)
    b = ae.generate(30, seed=3)  # > max_batch 8: chunked
    np.testing.assert_array_equal(a, b[:8])
    np.testing.assert_array_equal(ae.generate(30, seed=3, prior="fitted"), b)
    np.testing.assert_allclose(b[17:18], ae.decode(p.sample(3, 17, 1)), atol=1e-6)
    assert not np.array_equal(ae.generate(8, seed=4), a)


def test_class_conditional_generate(ae):
    p = ae.prior
    g = ae.generate(12, seed=1, label=3)
    np.testing.assert_allclose(g, ae.decode(p.sample(1, 0, 12, label=3)), atol=1e-6)
    np.testing.assert_array_equal(ae.generate(12, seed=1, label="3"), g)
    np.testing.assert_allclose(ae.generate(2, seed=1, label=3, temperature=0.0),
                               ae.decode(p.sample(1, 0, 2, label=3, temperature=0.0)), atol=1e-6)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"label": 10}, InputError, "unknown label"),
    ({"label": "Sneaker"}, InputError, "unknown class name"),
    ({"label": 2.5}, InputError, "unknown label"),
    ({"prior": "standard"}, ConfigError, "fit-prior"),
    ({"prior": "standard", "label": 1}, InputError, "fitted prior"),
    ({"prior": "gmm"}, ConfigError, "unknown prior"),
])
def test_generate_bad_prior_arguments(ae, kwargs, error, match):
    with pytest.raises(error, match=match):
        ae.generate(2, **kwargs)


def test_models_without_a_prior_say_how_to_fit_one(client_repo):  # noqa: F811
    with aeserve.Client(repository=client_repo, model="t_vae") as vae:
        assert vae.prior is None
        assert vae.generate(2, seed=0).shape == (2, 1, 28, 28)  # VAE: standard prior by default
        for kwargs in ({"prior": "fitted"}, {"label": 1}):
            with pytest.raises(PriorMissingError, match="aeserve fit-prior --model t_vae"):
                vae.generate(2, **kwargs)
        with vae.with_model("t_ae") as ae_plain:
            with pytest.raises(PriorMissingError, match="aeserve fit-prior --model t_ae"):
                ae_plain.generate(2)
            with pytest.raises(PriorMissingError, match="fit-prior"):
                ae_plain.anomaly_score(images(2), method="density")


def test_tampered_prior_in_the_repository_is_refused(prior_repo, tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(prior_repo, root)
    for part in ("encoder", "decoder"):
        cfg = root / f"t_ae_{part}" / "config.pbtxt"
        text = cfg.read_text()
        i = text.index("[", text.index("weights")) + 3  # a digit after "0." of the first weight
        cfg.write_text(text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1:])
    with aeserve.Client(repository=root, model="t_ae") as c:
        with pytest.raises(CardError, match="fingerprint"):
            c.generate(2)


def test_density_and_combined_scores(ae):
    x = images(11)
    z = ae.encode(x)
    np.testing.assert_allclose(ae.anomaly_score(x, method="density"), -ae.prior.log_density(z), rtol=1e-6)
    combined = ae.anomaly_score(x, method="combined")
    assert combined.shape == (11,) and np.all(np.isfinite(combined))
    cal = ae.card.get_json("prior.calibration")
    log_mse = np.log(ae.anomaly_score(x))
    want = (-ae.prior.log_density(z) - cal["nll"][0]) / cal["nll"][1] + (log_mse - cal["log_mse"][0]) / cal["log_mse"][1]
    np.testing.assert_allclose(combined, want, rtol=1e-5)


def test_attribute_vector_and_shift(ae):
    xw, xo = images(5, seed=1), images(7, seed=2)
    v = ae.attribute_vector(xw, xo)
    np.testing.assert_allclose(v, ae.encode(xw).mean(0) - ae.encode(xo).mean(0), atol=1e-5)
    x = images(3, seed=3)
    out = ae.shift(x, v, alphas=[0, 0.5, 2])
    assert out.shape == (3, 3, 1, 28, 28)
    np.testing.assert_allclose(out[:, 0], ae.reconstruct(x), atol=1e-6)
    np.testing.assert_allclose(out[1, 2], ae.decode(ae.encode(x[1:2]) + 2 * v)[0], atol=1e-5)
    lv = ae.label_vector(7, 1)
    p = ae.prior
    means = [(p.weights[p.labels == k] / p.weights[p.labels == k].sum()) @ p.means[p.labels == k] for k in (7, 1)]
    np.testing.assert_allclose(lv, means[0] - means[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("call, match", [
    (lambda c, v: c.shift(images(2), v, alphas=[]), "non-empty"),
    (lambda c, v: c.shift(images(2), v, alphas=[0, float("nan")]), "NaN"),
    (lambda c, v: c.shift(images(2), v, alphas="abc"), "numbers"),
    (lambda c, v: c.shift(images(2), np.zeros(5), alphas=[1]), r"\(N, 2\)"),
    (lambda c, v: c.shift(images(2), np.zeros((2, 2)), alphas=[1]), "one vector"),
    (lambda c, v: c.attribute_vector(np.zeros((0, 1, 28, 28), np.float32), images(2)), "x_with"),
    (lambda c, v: c.attribute_vector(images(2), np.zeros((3, 1, 14, 14), np.float32)), "x_without"),
    (lambda c, v: c.label_vector(3, 11), "unknown label"),
])
def test_arithmetic_bad_input(ae, call, match):
    v = np.ones(2, np.float32)
    with pytest.raises(InputError, match=match):
        call(ae, v)


def test_generate_draws_latents_in_windows_of_several_chunks(ae, monkeypatch):
    """Whatever the window (here 1 to 3 chunks of 8 rows, or all 50 rows in one), the images are
    the same, bit for bit: windows change only how many rows one draw computes."""
    import aeserve.client.generation as gen

    want, want_label = ae.generate(50, seed=5), ae.generate(50, seed=5, label=2)
    for window in (8, 16, 24):
        monkeypatch.setattr(gen, "LATENT_WINDOW", window)
        np.testing.assert_array_equal(ae.generate(50, seed=5), want)
        np.testing.assert_array_equal(ae.generate(50, seed=5, label=2), want_label)


def test_latent_windows_draw_each_window_once_and_forget_it():
    from concurrent.futures import ThreadPoolExecutor

    from aeserve.batching import chunks
    from aeserve.client.generation import LatentWindows

    calls: list[tuple[int, int]] = []

    def draw(s: int, count: int) -> np.ndarray:
        calls.append((s, count))
        return np.arange(s, s + count, dtype=np.float32)[:, None]

    w = LatentWindows(draw, 50, 16)
    with ThreadPoolExecutor(4) as pool:   # chunks of 8 asked for from 4 threads, in any order
        got = list(pool.map(lambda span: w.rows(*span), chunks(50, 8)))
    np.testing.assert_array_equal(np.concatenate(got)[:, 0], np.arange(50))
    assert sorted(calls) == [(0, 16), (16, 16), (32, 16), (48, 2)]   # each window drawn once
    w.rows(16, 24)                                   # handed out completely before: drawn again
    assert calls[-1] == (16, 16) and len(calls) == 5
    with pytest.raises(ValueError, match="straddle"):
        w.rows(12, 20)
