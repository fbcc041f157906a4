"""benchmarks/triton_settings.py: candidate repositories, CPU accounting, and one small end-to-end run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from bench_helpers import load_benchmark

from aeserve.repository import CONFIG_FILENAME, parse_config


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("triton_settings")


def test_parse_candidate(bench):
    assert bench.parse_candidate("2x1:100") == (2, 1, 100, None, None)
    assert bench.parse_candidate("1x4:0") == (1, 4, 0, None, None)
    assert bench.parse_candidate("2x1:100/8") == (2, 1, 100, 8, None)
    assert bench.parse_candidate("2x1:100@1024") == (2, 1, 100, None, 1024)
    assert bench.parse_candidate("3x2:50/2@64") == (3, 2, 50, 2, 64)
    for bad in ("2x1", "2:100", "0x1:100", "2x0:5", "2x1:-1", "axb:c", "2x1:100/0", "2x1:100@0", "2x1:100/x"):
        with pytest.raises(ValueError, match="candidate"):
            bench.parse_candidate(bad)


def test_candidate_repo_changes_only_instances_and_delay(bench, shipped_repository, tmp_path):
    dst = bench.candidate_repo(shipped_repository, "mnist_vae", tmp_path / "c", 3, 750)
    small = bench.candidate_repo(shipped_repository, "mnist_vae", tmp_path / "s", 1, 0, max_batch=64)
    cfg = parse_config((small / "mnist_vae_decoder" / CONFIG_FILENAME).read_text())
    assert cfg.max_batch_size == 64 and list(cfg.dynamic_batching.preferred_batch_size) == [64]
    assert sorted(p.name for p in dst.iterdir()) == ["mnist_vae_decoder", "mnist_vae_encoder"]
    for graph in ("mnist_vae_encoder", "mnist_vae_decoder"):
        old = parse_config((shipped_repository / graph / CONFIG_FILENAME).read_text())
        new = parse_config((dst / graph / CONFIG_FILENAME).read_text())
        assert [g.count for g in new.instance_group] == [3]
        assert new.dynamic_batching.max_queue_delay_microseconds == 750
        assert (new.max_batch_size, list(new.dynamic_batching.preferred_batch_size), dict(new.parameters)) == \
               (old.max_batch_size, list(old.dynamic_batching.preferred_batch_size), dict(old.parameters))
        graphs = sorted(p.relative_to(shipped_repository / graph) for p in (shipped_repository / graph).glob("*/model.onnx"))
        assert graphs and sorted(p.relative_to(dst / graph) for p in (dst / graph).glob("*/model.onnx")) == graphs
        for rel in graphs:
            assert (dst / graph / rel).read_bytes() == (shipped_repository / graph / rel).read_bytes()


def test_tree_cpu_counts_live_children(bench):
    child = subprocess.Popen([sys.executable, "-c",
                              "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
                              "print('done', flush=True)\ntime.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "done"
        assert bench.tree_cpu(os.getpid()) - bench.own_cpu() >= 0.25
        assert bench.tree_cpu(child.pid) >= 0.25
    finally:
        child.kill()
        child.wait()


def test_generate_only_run_with_in_flight_and_max_batch(bench, serving_repository, capsys):
    res = bench.main(["--repo", str(serving_repository), "--candidates", "2x1:100/2@64", "--levels", "none",
                      "--n", "300", "--rounds", "1", "--split-batches", "2"])
    out = capsys.readouterr().out
    assert "2x1:100/2@64" in out and "batch-1 decode clients" not in out
    assert res["sweep"] == {"2x1:100/2@64": []} and res["generate"]["2x1:100/2@64"][0]["server_cpu_s"] > 0


def test_small_run_prints_both_tables(bench, serving_repository, capsys):
    env_before = os.environ.get(bench.THREADS_ENV)
    res = bench.main(["--repo", str(serving_repository), "--candidates", "2x1:100", "--levels", "1,2",
                      "--seconds", "0.2", "--n", "600", "--rounds", "1", "--split-batches", "5"])
    out = capsys.readouterr().out
    assert "generate(600) over gRPC vs embedded" in out and "load average" in out
    assert [r["concurrency"] for r in res["sweep"]["2x1:100"]] == [1, 2]
    row = res["sweep"]["2x1:100"][0]
    assert row["requests"] > 0 and row["client_us_per_request"] > 0 and row["server_us_per_request"] > 0
    gen = res["generate"]["2x1:100"][0]
    assert gen["server_cpu_s"] > 0 and res["generate"]["embedded"][0]["server_cpu_s"] == 0
    assert "CPU s per thread" in out and res["thread_split"]["1"] and res["thread_split"]["2"]
    assert os.environ.get(bench.THREADS_ENV) == env_before   # the servers' setting does not leak
