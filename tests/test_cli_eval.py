"""The ``eval`` and ``bench`` verbs, and benchmarks/throughput.py, on hand-built models (no torch)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import eval_fixtures as fx
import pytest
from cli_helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    fx.write_identity_ae(root, "ident")
    fx.write_prior_vae(root, "prior")
    return root


def test_eval_prints_table_and_writes_report(repo, tmp_path, capsys):
    out = tmp_path / "sub" / "report.json"
    code, stdout, stderr = run_cli(["eval", "--model", "prior", "--repo", str(repo), "--limit", "40",
                                    "--sections", "reconstruction,likelihood", "--k", "16", "--no-baselines",
                                    "--out", str(out)], capsys)
    assert code == 0, stderr
    assert "likelihood" in stdout and "nll_iwae" in stdout and "543.43" in stdout   # 784 ln 2
    report = json.loads(out.read_text())
    assert report["model"] == "prior" and report["options"]["k"] == 16
    assert report["sections"]["likelihood"]["binarized"] is True
    assert report["sections"]["likelihood"]["kl"] == 0.0
    assert not list(out.parent.glob(".tmp-*"))          # atomic write left no temp file


def test_eval_reads_limit_and_keeps_subset_as_a_deprecated_alias(repo, tmp_path, capsys):
    out = tmp_path / "r.json"
    args = ["eval", "--model", "ident", "--repo", str(repo), "--sections", "reconstruction", "--no-baselines",
            "--quiet", "--out", str(out)]
    code, _, stderr = run_cli([*args, "--limit", "30"], capsys)
    assert code == 0, stderr
    assert json.loads(out.read_text())["data"]["n"] == 30
    code, _, stderr = run_cli([*args, "--subset", "20"], capsys)
    assert code == 0 and "--subset is deprecated; use --limit" in stderr
    assert json.loads(out.read_text())["data"] == {"name": "mnist", "split": "test", "n": 20, "limit": 20}
    code, stdout, _ = run_cli(["eval", "--help"], capsys)
    assert "--limit" in stdout and "--subset" not in stdout


def test_eval_bad_input_is_one_line_error(repo, capsys):
    code, _, stderr = run_cli(["eval", "--model", "ident", "--repo", str(repo), "--sections", "bogus"], capsys)
    assert code == 2 and stderr.startswith("error:") and "expected some of" in stderr
    code, _, stderr = run_cli(["eval", "--model", "missing", "--repo", str(repo)], capsys)
    assert code == 2 and "missing" in stderr and "Traceback" not in stderr


def test_eval_one_class_only(tmp_path, capsys):
    from aeserve.data import load_dataset
    from aeserve.eval.one_class import model_name

    test = load_dataset("mnist", "test", limit=200)
    for c in range(10):
        fx.write_constant_ae(tmp_path, model_name("mnist", c), test.x[test.y == c].mean(0))
        fx.add_unit_prior(tmp_path, model_name("mnist", c))
    code, stdout, stderr = run_cli(["eval", "--one-class", "mnist", "--one-class-repo", str(tmp_path),
                                    "--limit", "200", "--members", "1", "--quiet"], capsys)
    assert code == 0, stderr
    assert "mean_auroc_pct" in stdout
    assert "target anomaly" not in stdout      # the project's targets: benchmarks/targets.py, not the CLI
    code, _, stderr = run_cli(["eval", "--one-class", "mnist", "--one-class-repo", str(tmp_path),
                               "--limit", "200", "--quiet"], capsys)    # the default is a seed ensemble
    assert code != 0 and "mnist_oneclass0_m1" in stderr and "Traceback" not in stderr
    code, _, stderr = run_cli(["eval", "--one-class", "mnist", "--one-class-repo", str(tmp_path),
                               "--members", "0", "--quiet"], capsys)
    assert code == 2 and "members" in stderr and "Traceback" not in stderr


def test_bench_table_and_json(repo, tmp_path, capsys):
    out = tmp_path / "bench.json"
    code, stdout, stderr = run_cli(["bench", "--model", "prior", "--repo", str(repo), "--batch-sizes", "1,8",
                                    "--seconds", "0.02", "--no-torch", "--quiet", "--out", str(out)], capsys)
    assert code == 0, stderr
    assert "| op | batch | ort /s | aeserve /s |" in stdout and "overhead %" in stdout
    result = json.loads(out.read_text())
    assert {(r["op"], r["batch"], r["backend"]) for r in result["rows"]} == {
        (op, b, be) for op in ("generate", "reconstruct") for b in (1, 8) for be in ("ort", "aeserve")}
    assert result["skipped"]["torch"] == "disabled"
    code, _, stderr = run_cli(["bench", "--model", "prior", "--repo", str(repo), "--batch-sizes", "0"], capsys)
    assert code == 2 and "positive" in stderr


def test_benchmark_script_runs():
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--help"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "--batch-sizes" in res.stdout
