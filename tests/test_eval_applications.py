"""aeserve.eval sections inpainting, superresolution, anomaly_map and features, on hand-built
models whose answers are known (tests/apps_helpers.py, tests/eval_fixtures.py)."""

from __future__ import annotations

import numpy as np
import pytest
from apps_helpers import restoration_repository
from eval_fixtures import write_prior_vae

from aeserve import Client
from aeserve.data import Dataset
from aeserve.eval import evaluate
from aeserve.eval.anomaly_map import pasted_patches, pixel_auroc
from aeserve.eval.inpainting import masks, psnr_hole, telea
from aeserve.eval.superres import bicubic, ssim


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = restoration_repository(tmp_path_factory.mktemp("eval_apps") / "repo", max_batch=256)
    write_prior_vae(root, "prior")
    return root


def test_inpainting_measures_the_hole(repo):
    from aeserve.data import load_dataset
    from aeserve.eval.inpainting import inpainting

    x = load_dataset("mnist", "test", limit=40).x
    with Client(repository=repo, model="t_inpaint") as c:
        r = inpainting(c, x, x, pca_k=16)
    m = masks("center", 40, 28, 28)
    assert r["center"]["missing_share"] == pytest.approx(0.25)
    # the identity model fills the hole with 0.5
    assert r["center"]["model"]["psnr_hole"] == pytest.approx(psnr_hole(x, np.where(m, 0.5, x), m), rel=1e-6)
    assert {"telea", "pca", "model"} <= set(r["patches"]) and r["center"]["pca"]["k"] == 16
    best = max(r["center"]["telea"]["psnr_hole"], r["center"]["pca"]["psnr_hole"])
    assert r["center"]["model_minus_best_baseline_db"] == pytest.approx(r["center"]["model"]["psnr_hole"] - best)


def test_telea_fills_a_flat_image_exactly():
    x = np.full((2, 1, 28, 28), 100 / 255, np.float32)
    m = masks("patches", 2, 28, 28, seed=3)
    assert np.allclose(telea(x, m), x, atol=3 / 255)


def test_superresolution_section_against_bicubic(repo):
    r = evaluate("t_sr", "mnist", repository=repo, limit=30, sections="superresolution", progress=False,
                 log=lambda m: None)["sections"]["superresolution"]
    assert set(r) == {"x2", "x4"} and r["x4"]["low_shape"] == [1, 7, 7]
    for row in r.values():  # identity model = nearest upsampling of the low-res input
        assert row["model"]["psnr"] == pytest.approx(row["nearest"]["psnr"], rel=1e-6)
        assert row["model_minus_bicubic_db"] == pytest.approx(row["model"]["psnr"] - row["bicubic"]["psnr"])


def test_ssim_and_bicubic_basics():
    rng = np.random.default_rng(0)
    x = rng.random((3, 1, 28, 28)).astype(np.float32)
    assert np.allclose(ssim(x, x), 1.0)
    assert np.all(ssim(x, 1 - x) < 0.5)
    flat = np.full((1, 1, 7, 7), 0.3, np.float32)
    assert np.allclose(bicubic(flat, 4), 0.3, atol=1e-5)


def test_pasted_patches_and_pixel_auroc():
    x = np.zeros((4, 1, 28, 28), np.float32)
    foreign = np.ones((2, 1, 28, 28), np.float32)
    bad, truth = pasted_patches(x, foreign, seed=0)
    assert truth.sum() == 4 * 100 and np.array_equal(bad[:, :1] > 0.5, truth)
    assert pixel_auroc(bad, truth) == 1.0
    assert pixel_auroc(1 - bad, truth) == 0.0


def test_anomaly_map_section(repo):
    r = evaluate("prior", "mnist", repository=repo, limit=20, sections="anomaly_map", progress=False,
                 log=lambda m: None)["sections"]["anomaly_map"]
    assert r["foreign"] == "fashion-mnist" and 0.0 <= r["mse"]["pixel_auroc"] <= 1.0 and "nll" in r
    assert r["positive_share"] == pytest.approx(100 / 784)


def test_feature_accuracy_table():
    from aeserve.eval.features import feature_accuracy

    rng = np.random.default_rng(0)

    def bands(n):
        y = rng.integers(0, 3, n)
        x = rng.random((n, 1, 28, 28)).astype(np.float32) * 0.2
        for i, c in enumerate(y):
            x[i, 0, 9 * c:9 * c + 9] += 0.7
        return Dataset(x.clip(0, 1), y.astype(np.int64), "bands")

    train, test = bands(200), bands(100)

    class Features:  # the client surface the section uses: features, classify, classifier_card
        def features(self, x):
            return x.reshape(len(x), -1)[:, ::28].copy()

        def classify(self, x):
            from aeserve.errors import ModelNotFoundError
            raise ModelNotFoundError("no classifier")

    r = feature_accuracy(Features(), train, test, label_counts=(30, None), pca_k=5)
    assert set(r) >= {"30", "all", "served_classifier"} and "skipped" in r["served_classifier"]
    assert r["all"]["probe"] > 0.9 and r["30"]["pixels_logreg"] > 0.5


def test_sections_skip_models_they_do_not_apply_to(repo):
    r = evaluate("prior", "mnist", repository=repo, limit=10, sections="inpainting,superresolution",
                 progress=False, log=lambda m: None)["sections"]
    assert "not an inpainting model" in r["inpainting"]["skipped"]
    assert "not an upscaling model" in r["superresolution"]["skipped"]
