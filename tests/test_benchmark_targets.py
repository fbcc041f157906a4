"""benchmarks/targets.py: the project's targets, applied by model to ``aeserve eval`` reports."""

from __future__ import annotations

import json

import pytest
from bench_helpers import BENCHMARKS, load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("targets")


def test_targets_apply_by_model_and_read_dotted_keys(bench):
    report = {"card": {"family": "dae", "latent_dim": 32, "likelihood": "bernoulli"}, "data": {"name": "mnist"},
              "sections": {"reconstruction": {"mse": 0.008}, "denoising": {"gaussian_0.5": {"psnr_denoised": 19.5}},
                           "compression": {"model": {"bytes_per_image": 23.0, "psnr": 19.9}},
                           "anomaly": {"skipped": "no models"}}}
    got = {t["metric"]: t["met"] for t in bench.targets(report)}
    assert got == {"denoising.gaussian_0.5.psnr_denoised": True,      # latent 32: no MSE target
                   "compression.model.bytes_per_image": False}         # 23 B but below 20 dB
    report["data"]["name"], report["sections"]["anomaly"] = "fashion-mnist", {"mean_auroc_pct": 93.5}
    assert {t["metric"]: t["met"] for t in bench.targets(report)}["anomaly.mean_auroc_pct"] is True   # goal 93 here


def test_one_class_report_is_checked_and_the_exit_code_says_missed(bench, tmp_path, capsys):
    report = {"card": None, "data": {"name": "mnist"}, "sections": {"anomaly": {"mean_auroc_pct": 85.0}}}
    assert [(t["metric"], t["met"]) for t in bench.targets(report)] == [("anomaly.mean_auroc_pct", False)]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report))
    assert bench.main([str(path)]) == 1
    assert "target anomaly.mean_auroc_pct >= 97.5: 85 -> missed" in capsys.readouterr().out
    report["sections"]["anomaly"]["mean_auroc_pct"] = 97.5
    path.write_text(json.dumps(report))
    assert bench.main([str(path)]) == 0


def test_likelihood_target_applies_to_beta_1_vaes_only(bench):
    report = {"card": {"family": "vae", "latent_dim": 16, "likelihood": "bernoulli", "hparams": {"beta": 1.0}},
              "data": {"name": "mnist"}, "sections": {"likelihood": {"nll_iwae": 97.5, "binarized": True}}}
    assert [(t["metric"], t["met"]) for t in bench.targets(report)] == [("likelihood.nll_iwae", False)]
    report["card"]["hparams"]["beta"] = 0.1
    assert bench.targets(report) == []


def test_shipped_results_are_reports_it_reads(bench):
    results = BENCHMARKS / "results"
    for name in ("eval_mnist_vae.json", "eval_mnist_vae_beta1_nll1000.json", "one_class_mnist.json"):
        report = json.loads((results / name).read_text())
        assert bench.targets(report), name
