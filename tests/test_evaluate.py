"""aeserve.eval through the Client, on hand-built models with known answers (no torch)."""

from __future__ import annotations

import json
import math

import eval_fixtures as fx
import numpy as np
import pytest

from aeserve import metrics
from aeserve.classifier import Classifier, default_classifier_path
from aeserve.data import load_dataset
from aeserve.errors import ConfigError, InputError, ModelNotFoundError, PriorMissingError
from aeserve.eval import evaluate, evaluate_one_class, format_table, write_json
from aeserve.eval.compression import codec_points, codec_settings, rate_distortion_plot
from aeserve.eval.likelihood import binarize, likelihood
from aeserve.eval.one_class import member_name, model_name, one_class_protocol
from aeserve.eval.reconstruction import PCABaseline, corrupt


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    fx.write_identity_ae(root, "ident")
    fx.write_prior_vae(root, "prior", p=0.5)
    fx.write_prior_vae(root, "prior_gauss", p=0.5, likelihood="gaussian")
    return root


@pytest.fixture(scope="module")
def test_set():
    return load_dataset("mnist", "test", limit=300)


def _client(repo, name):
    from aeserve import Client

    return Client(model=name, repository=repo)


# ---- whole reports ---------------------------------------------------------------------------
def test_progress_goes_to_the_logger_not_to_the_terminal(repo, capfd, caplog):
    import logging

    with caplog.at_level(logging.INFO, "aeserve.eval"):
        evaluate("ident", repository=repo, limit=10, baselines=False, sections="reconstruction", progress=False)
    assert capfd.readouterr().err == ""
    assert any("[eval] reconstruction" in r.getMessage() for r in caplog.records)


def test_identity_model_reconstructs_perfectly_and_denoises_nothing(repo, tmp_path):
    r = evaluate("ident", repository=repo, limit=100, baselines=False, sections="reconstruction,denoising",
                 progress=False, log=lambda m: None)
    rec = r["sections"]["reconstruction"]
    assert rec["mse"] == 0.0 and rec["psnr"] == math.inf
    for row in r["sections"]["denoising"].values():     # identity "denoiser" returns its noisy input
        assert row["psnr_denoised"] == pytest.approx(row["psnr_noisy"])
    assert r["sections"]["denoising"]["gaussian_0.5"]["psnr_noisy"] == pytest.approx(9.4, abs=0.3)  # the anchor's input
    path = write_json(r, tmp_path / "r.json")
    back = json.loads(path.read_text())                  # strict JSON: inf written as a string
    assert back["sections"]["reconstruction"]["psnr"] == "inf"
    assert back["data"] == {"name": "mnist", "split": "test", "n": 100, "limit": 100}
    table = format_table(r)
    assert "reconstruction" in table and "inf" in table and "gaussian_0.5.psnr_noisy" in table


def test_sections_that_do_not_apply_are_skipped_with_a_reason(repo):
    r = evaluate("ident", repository=repo, limit=50, baselines=False, sections=["likelihood", "anomaly"],
                 one_class_repository=repo, progress=False, log=lambda m: None)
    assert "VAE" in r["sections"]["likelihood"]["skipped"]
    assert "mnist_oneclass0" in r["sections"]["anomaly"]["skipped"] and "--train" in r["sections"]["anomaly"]["skipped"]


def test_bad_arguments(repo):
    with pytest.raises(ConfigError, match="expected some of"):
        evaluate("ident", repository=repo, sections="recon")
    with pytest.raises(InputError, match="limit"):
        evaluate("ident", repository=repo, limit=0)
    with pytest.raises(ModelNotFoundError):
        evaluate("nope", repository=repo)
    with pytest.raises(ConfigError, match="unknown dataset"):
        evaluate("ident", "no_such_dataset", repository=repo)


def test_user_data_without_splits_and_wrong_shape(repo, tmp_path):
    np.save(tmp_path / "vectors.npy", np.random.default_rng(0).random((20, 10)).astype(np.float32))
    with pytest.raises(InputError, match="expects"):
        evaluate("ident", str(tmp_path / "vectors.npy"), repository=repo)
    np.save(tmp_path / "imgs.npy", np.random.default_rng(0).random((30, 1, 28, 28)).astype(np.float32))
    r = evaluate("ident", str(tmp_path / "imgs.npy"), repository=repo, sections="reconstruction,generation",
                 progress=False, log=lambda m: None)
    assert r["data"]["split"] == "all" and r["data"]["n"] == 30
    assert r["sections"]["reconstruction"]["mse"] == 0.0
    assert "skipped" in r["sections"]["generation"]   # no classifier for user data


# ---- likelihood ------------------------------------------------------------------------------
def test_posterior_equal_to_prior_gives_zero_kl_and_exact_bound(repo, test_set):
    xb = binarize(test_set.x[:20], seed=0)
    with _client(repo, "prior") as c:
        res = likelihood(c, xb, k=64, seed=0, binarized=True)
    # log w = log p(x|z) + log p(z) - log q(z|x) = 784 log 0.5 for every sample: ELBO = IWAE exactly
    assert res["kl"] == 0.0
    assert res["nll_elbo"] == pytest.approx(784 * math.log(2), rel=1e-9)
    assert res["nll_iwae"] == pytest.approx(784 * math.log(2), rel=1e-9)
    assert res["nll_iwae_k50"] == pytest.approx(784 * math.log(2), rel=1e-9)


def test_gaussian_vae_bound_matches_closed_form_and_is_labelled(repo, test_set):
    x = test_set.x[:10]
    with _client(repo, "prior_gauss") as c:
        res = likelihood(c, x, k=8)
    expected = -metrics.log_gaussian(x, np.full_like(x, 0.5), 0.1).mean()
    assert res["nll_iwae"] == pytest.approx(expected, rel=1e-6)
    assert "continuous density" in res["note"]


def test_binarize_is_seeded_bernoulli():
    x = np.full((200, 1, 28, 28), 0.3, np.float32)
    b = binarize(x, seed=1)
    assert set(np.unique(b)) <= {0.0, 1.0} and abs(b.mean() - 0.3) < 0.01
    np.testing.assert_array_equal(b, binarize(x, seed=1))


# ---- denoising / PCA -------------------------------------------------------------------------
def test_pca_with_full_rank_reconstructs_exactly_and_corruptions_are_defined():
    rng = np.random.default_rng(0)
    basis = rng.random((3, 16)).astype(np.float32)
    x = (rng.random((50, 3)).astype(np.float32) @ basis).reshape(50, 1, 4, 4) / 3
    pca = PCABaseline.fit(x, 3)
    np.testing.assert_allclose(pca.reconstruct(x), x, atol=1e-5)
    g = corrupt(np.full((1000, 10), 0.5, np.float32), "gaussian", 0.1, np.random.default_rng(0))
    assert g.min() >= 0 and g.max() <= 1 and abs(g.std() - 0.1) < 0.01
    m = corrupt(np.ones((1000, 10), np.float32), "masking", 0.25, np.random.default_rng(0))
    assert abs((m == 0).mean() - 0.25) < 0.01
    with pytest.raises(InputError):
        corrupt(g, "salt", 0.1, np.random.default_rng(0))


# ---- one-class protocol ----------------------------------------------------------------------
def test_one_class_protocol_equals_direct_auroc(tmp_path, test_set):
    x, y = test_set.x, test_set.y
    for c in (0, 1):   # "model" for class c reconstructs everything as class c's mean image
        fx.write_constant_ae(tmp_path, model_name("mnist", c), x[y == c].mean(0))
    res = one_class_protocol("mnist", x, y, repository=tmp_path, classes=(0, 1), method="mse", members=1)
    for c in (0, 1):
        direct = 100 * metrics.auroc(((x - x[y == c].mean(0)) ** 2).reshape(len(x), -1).mean(1), y != c)
        assert res["auroc_pct"][str(c)] == pytest.approx(direct, abs=1e-9)
    assert res["mean_auroc_pct"] == pytest.approx(np.mean(list(res["auroc_pct"].values())))
    assert res["auroc_pct"]["1"] > 90          # a mean "1" already separates ones from the rest
    assert res["method"] == "mse"


def test_one_class_default_score_is_combined_and_needs_the_prior(tmp_path, test_set):
    x, y = test_set.x, test_set.y
    name = model_name("mnist", 3)
    fx.write_constant_ae(tmp_path, name, x[y == 3].mean(0))
    with pytest.raises(PriorMissingError, match="fit-prior"):
        one_class_protocol("mnist", x, y, repository=tmp_path, classes=(3,), members=1)
    fx.add_unit_prior(tmp_path, name)
    res = one_class_protocol("mnist", x, y, repository=tmp_path, classes=(3,), members=1)
    assert res["method"] == "combined"
    # every code is 0 (one density for all), so the combined score ranks as the log MSE does
    direct = 100 * metrics.auroc(((x - x[y == 3].mean(0)) ** 2).reshape(len(x), -1).mean(1), y != 3)
    assert res["auroc_pct"]["3"] == pytest.approx(direct, abs=1e-9)


def _mse_to(x, image):
    return ((x - image) ** 2).reshape(len(x), -1).mean(1)


def test_member_names_keep_the_single_model_name_for_the_first_member():
    assert member_name("mnist", 3, 0) == model_name("mnist", 3) == "mnist_oneclass3"
    assert member_name("fashion-mnist", 3, 2) == "fashion_oneclass3_m2"
    with pytest.raises(InputError, match="member"):
        member_name("mnist", 3, -1)


def test_one_class_ensemble_scores_the_mean_of_its_members(tmp_path, test_set):
    x, y = test_set.x, test_set.y
    mean_image, first_image = x[y == 2].mean(0), x[y == 2][0]   # two different "models" of class 2
    fx.write_constant_ae(tmp_path, member_name("mnist", 2, 0), mean_image)
    fx.write_constant_ae(tmp_path, member_name("mnist", 2, 1), first_image)
    one = 100 * metrics.auroc(_mse_to(x, mean_image), y != 2)
    other = 100 * metrics.auroc(_mse_to(x, first_image), y != 2)
    both = 100 * metrics.auroc((_mse_to(x, mean_image) + _mse_to(x, first_image)) / 2, y != 2)
    assert len({round(one, 6), round(other, 6), round(both, 6)}) == 3   # the three rankings differ
    res = one_class_protocol("mnist", x, y, repository=tmp_path, classes=(2,), method="mse", members=2)
    assert res["auroc_pct"]["2"] == pytest.approx(both, abs=1e-9)
    assert res["members"] == 2 and res["models"] == ["mnist_oneclass2", "mnist_oneclass2_m1"]
    res = one_class_protocol("mnist", x, y, repository=tmp_path, classes=(2,), method="mse", members=1)
    assert res["auroc_pct"]["2"] == pytest.approx(one, abs=1e-9)   # members=1: the first model only


def test_one_class_ensemble_names_its_missing_members_and_refuses_bad_counts(tmp_path, test_set):
    x, y = test_set.x, test_set.y
    fx.write_constant_ae(tmp_path, member_name("mnist", 5, 0), x[y == 5].mean(0))
    with pytest.raises(ModelNotFoundError, match="mnist_oneclass5_m1, mnist_oneclass5_m2"):
        one_class_protocol("mnist", x, y, repository=tmp_path, classes=(5,), method="mse", members=3)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InputError, match="members"):
            one_class_protocol("mnist", x, y, repository=tmp_path, classes=(5,), method="mse", members=bad)
    with pytest.raises(InputError, match="members"):
        evaluate_one_class("mnist", limit=50, repository=tmp_path, members=0, progress=False, log=lambda m: None)


@pytest.mark.slow
def test_train_one_class_writes_the_prior_the_combined_score_needs(tmp_path, test_set):
    from aeserve import Client
    from aeserve.eval.one_class import train_one_class

    names = train_one_class("mnist", tmp_path, classes=(7,), recipe={"epochs": 1}, members=2, progress=False)
    assert names == ["mnist_oneclass7", "mnist_oneclass7_m1"]
    seeds = []
    for name in names:
        with Client(repository=tmp_path, model=name) as c:
            assert c.prior is not None and c.prior.dim == c.card.latent_dim and c.prior.labels is None
            assert set(c.card.get_json("prior.calibration")) >= {"nll", "log_mse"}
            seeds.append(int(c.card.train["seed"]))
    assert seeds == [0, 1]                                   # member m is trained with seed + m
    x, y = test_set.x[:500], test_set.y[:500]
    res = one_class_protocol("mnist", x, y, repository=tmp_path, classes=(7,), members=2)
    assert res["recipe"]["family"] == "vae" and res["auroc_pct"]["7"] > 60   # one epoch already separates sevens
    with pytest.raises(InputError, match="members"):
        train_one_class("mnist", tmp_path, classes=(7,), members=0, progress=False)


def test_one_class_report_for_all_ten_classes(tmp_path, test_set):
    x, y = test_set.x, test_set.y
    for c in range(10):
        fx.write_constant_ae(tmp_path, model_name("mnist", c), x[y == c].mean(0))
        fx.add_unit_prior(tmp_path, model_name("mnist", c))
    r = evaluate_one_class("mnist", limit=300, repository=tmp_path, members=1, progress=False, log=lambda m: None)
    a = r["sections"]["anomaly"]
    assert r["data"]["n"] == 300 and len(a["auroc_pct"]) == 10
    assert 70 < a["mean_auroc_pct"] < 100                 # "distance to the class mean" is a decent detector
    assert "targets" not in r                              # pass/fail targets live in benchmarks/targets.py
    assert "auroc_pct.9" in format_table(r)


def test_one_class_constant_scores_give_chance(tmp_path, test_set):
    fx.write_identity_ae(tmp_path, model_name("mnist", 4))   # identity: every score is 0
    res = one_class_protocol("mnist", test_set.x, test_set.y, repository=tmp_path, classes=(4,), method="mse",
                             members=1)
    assert res["auroc_pct"]["4"] == 50.0


# ---- generation ------------------------------------------------------------------------------
def test_generation_of_one_fixed_digit(tmp_path, test_set):
    x, y = test_set.x, test_set.y
    threes = np.flatnonzero(y == 3)
    probs = Classifier(default_classifier_path("mnist")).predict(x[threes]).probs
    fx.write_constant_ae(tmp_path, "three", x[threes[np.argmax(probs[:, 3])]])  # a clear 3
    # an AE generates through a fitted prior (any prior will do: the decoder ignores z)
    from aeserve.export.recard import write_card_version
    from aeserve.prior import LatentPrior

    write_card_version(tmp_path, "three", LatentPrior(np.ones(1), np.zeros((1, 4)), np.eye(4)[None]).card_entries())
    r = evaluate("three", repository=tmp_path, limit=300, sections="generation", n_generate=200,
                 progress=False, log=lambda m: None)
    g = r["sections"]["generation"]
    assert g["confident_share"] == 1.0
    assert g["label_entropy"] == 0.0 and g["label_histogram"][3] == 200
    assert g["frechet_distance"] > g["real_test"]["frechet_distance_reference"]
    assert g["real_test"]["classifier_accuracy"] > 0.97
    assert g["real_test"]["label_entropy"] == pytest.approx(math.log(10), abs=0.05)
    assert default_classifier_path("mnist").name == "mnist_classifier.onnx"


# ---- compression -----------------------------------------------------------------------------
def test_codecs_on_mnist_match_published_sizes(test_set, tmp_path):
    settings = [s for s in codec_settings() if s[0] != "jpeg" and s[1] in ("optimize", "m6", "q0", "q25", "q50", "q90")]
    rows = {r["codec"] + r["setting"]: r for r in codec_points(test_set.x[:100], settings)}
    assert rows["pngoptimize"]["psnr"] == math.inf and rows["webp-losslessm6"]["psnr"] == math.inf
    assert 240 < rows["pngoptimize"]["bytes_per_image"] < 300          # published ~268
    assert 175 < rows["webp-losslessm6"]["bytes_per_image"] < 225      # published ~200
    webp = [rows[f"webpq{q}"] for q in (0, 25, 50, 90)]
    assert all(a["bytes_per_image"] < b["bytes_per_image"] and a["psnr"] < b["psnr"] for a, b in zip(webp, webp[1:]))
    out = rate_distortion_plot(list(rows.values()), tmp_path / "rd.png", title="t")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compression_section_through_client(repo, tmp_path):
    r = evaluate("ident", repository=repo, limit=60, sections="compression", compression_n=40,
                 plot=tmp_path / "rd.png", progress=False, log=lambda m: None)
    m = r["sections"]["compression"]["model"]
    assert m["n"] == 40 and m["psnr_reconstruct"] == math.inf
    assert m["psnr"] > 45          # 8-bit quantization of 8-bit pixels: nearly lossless
    assert m["bytes_per_image"] == m["blob_bytes"] / 40
    assert (tmp_path / "rd.png").is_file()


@pytest.mark.triton
def test_server_lost_during_eval_is_an_error_not_a_skip(repo):
    """The server dies as the first section starts: evaluate raises a ServerError (the CLI
    exits non-zero) instead of reporting every section as skipped."""
    import os
    import signal

    from aeserve.errors import ServerError
    from aeserve.serve import free_ports, serve

    h, g, m = free_ports(3)
    server = serve(repo, http_port=h, grpc_port=g, metrics_port=m)
    try:
        def kill_on_first_section(message: str) -> None:
            if "reconstruction" in message and server.pid:
                os.kill(server.pid, signal.SIGKILL)

        with pytest.raises(ServerError):
            evaluate("ident", "mnist", url=server.url_grpc, limit=50, sections=["reconstruction"],
                     baselines=False, progress=False, log=kill_on_first_section)
    finally:
        server.stop()
