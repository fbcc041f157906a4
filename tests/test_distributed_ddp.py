"""aeserve.distributed.ddp: 2 DDP processes (gloo) == 1 process, typed errors, a dying rank."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import run_cli

from aeserve import checkpoint
from aeserve.data import load_dataset
from aeserve.distributed import ddp
from aeserve.errors import ConfigError
from aeserve.models import build_model
from aeserve.train import train

# 1,150 training images -> 1,035 after the 10% validation split; batch 64 leaves a last
# batch of 11, split 6/5 between two ranks (the uneven-shard weighting is exercised).
ARGS = dict(family="ae", arch="mlp", latent_dim=4, epochs=2, batch_size=64, seed=5, hparams={"hidden": [64]})
WEIGHT_ATOL = 1e-5  # float addition order (per-rank means, then the gloo average) differs from one process


@pytest.fixture(scope="module")
def mnist_npz(tmp_path_factory) -> Path:
    """A real MNIST subset as one small .npz, so that each rank loads it in milliseconds."""
    tr, te = load_dataset("mnist", "train", limit=1150), load_dataset("mnist", "test", limit=300)
    path = tmp_path_factory.mktemp("ddp") / "mnist_sub.npz"
    np.savez(path, x_train=tr.x, y_train=tr.y, x_test=te.x, y_test=te.y)
    return path


def test_two_gloo_processes_match_one_process(mnist_npz, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    one = train(data=str(mnist_npz), progress=False, **ARGS)
    assert one.history[-1]["epoch"] == 2 and 1035 % 64 == 11
    out = tmp_path / "ddp.pt"
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)}
    code, stdout, err = run_cli(["train", "--family", "ae", "--latent", "4", "--epochs", "2", "--batch-size", "64",
                                 "--seed", "5", "--hidden", "64", "--data", str(mnist_npz), "--out", str(out),
                                 "--quiet", "--nproc-per-node", "2"], capsys)
    assert code == 0, err
    assert "[2 processes]" in stdout and str(out) in stdout
    assert "OMP_NUM_THREADS" not in os.environ  # set for the ranks only, not left in the caller's environment
    assert {s: signal.getsignal(s) for s in handlers} == handlers  # the launcher's agent gave the signals back
    model = checkpoint.load(out)  # complete, checksummed, rebuilds from its card
    assert model.card.get("train.world_size") == "2" and one.card.get("train.world_size") == "1"
    mine, ref = model.state_dict(), one.model.state_dict()
    diffs = {k: float((mine[k] - ref[k]).abs().max()) for k in ref}
    assert max(diffs.values()) < WEIGHT_ATOL, diffs
    # the training really moved the weights far more than the tolerance
    torch.manual_seed(ARGS["seed"])  # the trainer builds its model right after seeding
    init = build_model(one.card).state_dict()
    assert max(float((ref[k] - init[k]).abs().max()) for k in ref) > 1000 * WEIGHT_ATOL
    # validation was reduced over both ranks: the same mean as one process saw
    assert model.card.metrics["val_loss"] == pytest.approx(one.card.metrics["val_loss"], rel=1e-4)
    assert model.card.metrics["test_mse"] == pytest.approx(one.card.metrics["test_mse"], rel=1e-4)


@pytest.mark.parametrize("kwargs, message", [
    ({"nproc_per_node": len(os.sched_getaffinity(0)) + 1}, "more processes than"),
    ({"nproc_per_node": 0}, "must be an integer >= 1"),
    ({"nproc_per_node": 1, "nnodes": 2}, "--rdzv-endpoint must be HOST:PORT"),
    ({"nproc_per_node": 1, "nnodes": 2, "node_rank": 2, "rdzv_endpoint": "127.0.0.1:29500"}, "--node-rank must be"),
])
def test_bad_launch_arguments_fail_before_any_process(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ddp.launch({"family": "ae", "data": "mnist", "out": tmp_path / "x.pt"}, **kwargs)
    assert not (tmp_path / "x.pt").exists()


def test_bad_training_argument_is_refused_before_launch(tmp_path):
    with pytest.raises(ConfigError, match="unknown family"):
        ddp.launch({"family": "nope", "out": tmp_path / "x.pt"}, nproc_per_node=1)
    with pytest.raises(ConfigError, match="unknown training argument"):
        ddp.launch({"family": "ae", "epochz": 3}, nproc_per_node=1)


def _spawned_workers(parent: int) -> list[int]:
    """pids of multiprocessing-spawned children of ``parent`` (the DDP ranks)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and "spawn_main" in cmd:
            found.append(int(d.name))
    return found


def test_a_rank_that_dies_stops_the_job_and_leaves_no_checkpoint(mnist_npz, tmp_path):
    out = tmp_path / "dead.pt"
    cmd = [sys.executable, "-m", "aeserve.train", "--family", "ae", "--latent", "4",
           "--epochs", "500", "--hidden", "64", "--data", str(mnist_npz), "--out", str(out), "--quiet",
           "--nproc-per-node", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while len(workers := _spawned_workers(proc.pid)) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        time.sleep(1.0)
        os.kill(max(workers), signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, err
    assert "died" in err and "killed by signal 9" in err and "no checkpoint was written" in err, err
    assert "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob("*.tmp*"))
    assert not [w for w in workers if Path(f"/proc/{w}").exists() and "spawn_main" in
                Path(f"/proc/{w}/cmdline").read_bytes().decode(errors="replace")]


def test_torch_threads_are_split_between_local_ranks():
    class Two(ddp.DDPRanks):
        def __init__(self):  # no process group needed for the arithmetic
            self.local_world_size = 2

    assert Two().threads(2) == 1 and Two().threads(1) == 1 and Two().threads(8) == 4
    assert torch.get_num_threads() >= 1


def _child_failed(tmp_path: Path, rank: int, exitcode: int, message: str | None):
    """torch elastic's own ChildFailedError for one failed rank (with the error file a rank writes)."""
    import json

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

    error_file = tmp_path / f"error_{rank}_{exitcode}.json"
    if message is not None:
        error_file.write_text(json.dumps({"message": {"message": message, "extraInfo": {"timestamp": "1"}}}))
    return ChildFailedError("run_worker", {rank: ProcessFailure(rank, 4242, exitcode, str(error_file))})


def test_a_typed_error_raised_in_a_rank_comes_back_typed(tmp_path):
    from aeserve.errors import DataError, DistributedError

    err = ddp._failure(_child_failed(tmp_path, 1, 1, "DataError: cannot read x.npz: bad zip"))
    assert type(err) is DataError and str(err) == "cannot read x.npz: bad zip (rank 1)"
    err = ddp._failure(_child_failed(tmp_path, 0, 1, "RuntimeError: NCCL error"))
    assert type(err) is DistributedError and "rank 0 (pid 4242) died: exit code 1: RuntimeError: NCCL error" in str(err)
    err = ddp._failure(_child_failed(tmp_path, 1, -9, None))
    assert type(err) is DistributedError and "died: killed by signal 9 (SIGKILL); every rank was stopped" in str(err)
