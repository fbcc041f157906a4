"""Library calls leave torch's process-wide state (thread count, global RNG) as they found it."""

from __future__ import annotations

import contextlib
import sys

import numpy as np
import pytest
import torch

from aeserve.torch_state import restores_torch_state


@contextlib.contextmanager
def unchanged_process_state(threads: int = 1):
    """Set a distinctive thread count, then assert that the block left it, torch's and
    NumPy's global random streams, and sys.stdout as they were."""
    before_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.manual_seed(1234)
    np.random.seed(4321)
    expected_torch, expected_np = torch.rand(4), np.random.rand(4)
    torch.manual_seed(1234)
    np.random.seed(4321)
    stdout = sys.stdout
    try:
        yield
        assert torch.get_num_threads() == threads
        assert torch.equal(torch.rand(4), expected_torch), "the global torch RNG was advanced or reseeded"
        assert np.array_equal(np.random.rand(4), expected_np), "the global NumPy RNG was advanced or reseeded"
        assert sys.stdout is stdout
    finally:
        torch.set_num_threads(before_threads)


def test_decorator_restores_threads_and_rng_also_on_error():
    @restores_torch_state
    def meddle(fail: bool) -> int:
        torch.set_num_threads(2)
        torch.manual_seed(0)
        torch.rand(10)
        if fail:
            raise ValueError("boom")
        return 7

    with unchanged_process_state():
        assert meddle(False) == 7
    with unchanged_process_state(), pytest.raises(ValueError, match="boom"):
        meddle(True)
    assert meddle.__name__ == "meddle"


def test_train_leaves_threads_and_rngs(monkeypatch):
    from aeserve.train import train

    monkeypatch.setenv("AESERVE_THREADS", "2")  # train wants 2; the caller runs with 1
    with unchanged_process_state(threads=1):
        train("vae", "mlp", 2, "mnist", epochs=1, limit=200, hparams={"hidden": [16]}, progress=False)


def test_classifier_training_leaves_threads_and_rngs(monkeypatch):
    from aeserve.classifier_train import train_classifier

    monkeypatch.setenv("AESERVE_THREADS", "2")
    x = np.random.default_rng(0).random((16, 1, 28, 28), dtype=np.float32)
    with unchanged_process_state(threads=1):
        train_classifier(x, np.arange(16) % 10, epochs=1, batch_size=8, progress=False)


def test_export_leaves_rng_and_stdout(tmp_path, monkeypatch, caplog):
    """Export draws its example inputs from its own generator and never swaps sys.stdout
    (a redirect would swallow every other thread's output while the exporter runs)."""
    import logging

    from aeserve.card import ModelCard
    from aeserve.export import export_model, onnx_graphs
    from aeserve.models import build_model

    seen = []
    real_export = onnx_graphs.torch.onnx.export

    def spy(*args, **kwargs):
        seen.append(sys.stdout)
        return real_export(*args, **kwargs)

    monkeypatch.setattr(onnx_graphs.torch.onnx, "export", spy)
    card = ModelCard("ae", "mlp", (1, 6, 6), 2, "bernoulli", "toy", {"hparams": '{"hidden": [8]}'})
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model(card).eval()
    with unchanged_process_state(threads=torch.get_num_threads()), caplog.at_level(logging.INFO, "aeserve"):
        stdout = sys.stdout
        export_model(model, tmp_path / "repo", "toy", max_batch=4, kind="cpu")
    assert seen and all(s is stdout for s in seen)
    steps = [r.getMessage() for r in caplog.records if r.name.startswith("aeserve.export")]
    assert any("parity gate passed" in m for m in steps) and any("wrote version 1" in m for m in steps)


def test_bench_leaves_threads_and_environment(monkeypatch):
    import os

    from aeserve.eval.throughput import bench

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    with unchanged_process_state(threads=1):
        result = bench("mnist_vae", batch_sizes=(2,), ops=("generate",), min_seconds=0.01, torch_threads=2)
    assert result["torch_threads"] == 2 and "torch" not in result["skipped"]
    assert "OMP_WAIT_POLICY" not in os.environ
