"""aeserve.distributed.batch_job on a local 2-CPU Ray: the 10,000 MNIST test images scored and
compressed by 2 actors equal one Client, embedded or through Triton, even when an actor is killed
mid-job; refusals before any actor starts. (Resuming runs through the CLI: tests/test_cli_batch.py.)"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import aeserve
from aeserve.data import load_dataset
from aeserve.distributed.batch_job import run_batch
from aeserve.errors import ConfigError, DataError, InputError, ServerUnavailableError


@pytest.fixture(scope="module")
def mnist_test(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """The 10,000 MNIST test images as one .npy shard, and the array."""
    x = load_dataset("mnist", "test").x
    path = tmp_path_factory.mktemp("batch") / "mnist_test.npy"
    np.save(path, x)
    return path, x


SAMPLED = slice(0, None, 20)  # payload reference rows: one Client.compress call per image costs ~1 ms


@pytest.fixture(scope="module")
def reference(mnist_test, serving_repository) -> dict[str, object]:
    """What one process with one Client computes: every score, one payload per sampled image."""
    _, x = mnist_test
    with aeserve.Client(repository=serving_repository) as c:
        return {"score": c.anomaly_score(x), "payload": [c.compress(x[i:i + 1]) for i in range(10_000)[SAMPLED]]}


def read(output: Path) -> dict[str, list]:
    table = pq.read_table(output)
    return {name: table.column(name).to_pylist() for name in table.column_names}


def _actor_pids() -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if cmd.startswith("ray::MapWorker(MapBatches(_ChunkJob))"):
                pids.append(int(d.name))
    return pids


@pytest.fixture(scope="module")
def embedded_job(ray_cluster, mnist_test, serving_repository, tmp_path_factory) -> dict[str, object]:
    """Score and compress the 10,000 images with 2 embedded actors, SIGKILLing one of them mid-job."""
    path, _ = mnist_test
    out = tmp_path_factory.mktemp("embedded") / "out.parquet"
    result: dict[str, object] = {}

    def job() -> None:
        try:
            result["r"] = run_batch(["score", "compress"], path, out, repository=serving_repository, workers=2,
                                    chunk_rows=500, progress=False)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            result["error"] = e

    t = threading.Thread(target=job)
    t.start()
    staging, deadline = out.with_name("out.parquet.partial"), time.monotonic() + 180
    while "killed" not in result and t.is_alive() and time.monotonic() < deadline:
        if list(staging.glob("part-*.parquet")) and len(pids := _actor_pids()) == 2:
            result["killed"] = pids[0]
            os.kill(pids[0], signal.SIGKILL)
        time.sleep(0.02)
    t.join(300)
    result["out"] = out
    return result


def _sorted(got: dict[str, list]) -> dict[str, list]:
    order = np.argsort([int(i.rsplit(":", 1)[1]) for i in got["row_id"]])
    return {k: [v[i] for i in order] for k, v in got.items()}


def test_two_actors_score_and_compress_mnist_test_like_one_client_even_when_one_dies(embedded_job, reference):
    assert "error" not in embedded_job, embedded_job.get("error")
    assert "killed" in embedded_job, "the job ended before an actor could be killed"
    r, out = embedded_job["r"], embedded_job["out"]
    assert r.rows == 10_000 and r.chunks == 20 and r.resumed_chunks == 0
    got = read(out)
    assert len(got["row_id"]) == 10_000  # each id exactly once:
    assert set(got["row_id"]) == {f"mnist_test.npy:{i}" for i in range(10_000)}
    got = _sorted(got)
    np.testing.assert_allclose(got["score"], reference["score"], rtol=1e-6, atol=0)
    assert got["payload"][SAMPLED] == reference["payload"]
    assert not out.with_name("out.parquet.partial").exists() and not list(out.glob(".*tmp"))


def test_the_same_job_against_triton_gives_the_same_values(embedded_job, reference, mnist_test, triton_server,
                                                           tmp_path):
    path, _ = mnist_test
    out = tmp_path / "triton.parquet"
    r = run_batch(["score", "compress"], path, out, url=triton_server.url_grpc, workers=2, progress=False)
    assert r.rows == 10_000
    got = _sorted(read(out))
    assert got["row_id"] == [f"mnist_test.npy:{i}" for i in range(10_000)]
    np.testing.assert_allclose(got["score"], reference["score"], rtol=1e-5, atol=0)
    assert got["payload"][SAMPLED] == reference["payload"]
    assert got["payload"] == _sorted(read(embedded_job["out"]))["payload"]  # all 10,000 as embedded


@pytest.mark.parametrize("kwargs, error, message", [
    ({"workers": 0}, ConfigError, "workers must be an integer >= 1"),
    ({"ops": ["score", "paint"]}, ConfigError, "batch operations must be distinct"),
    ({"url": "grpc://127.0.0.1:9"}, ServerUnavailableError, "127.0.0.1:9"),
    ({"address": "127.0.0.1:9"}, ServerUnavailableError, "cannot reach the Ray cluster"),
    ({"workers": 3}, ConfigError, "exceed the Ray cluster's 2 CPUs"),
    ({"options": {"compress": {"bits": 8}}}, ConfigError, "does not run"),
])
def test_bad_jobs_are_refused_before_any_actor_starts(ray_cluster, serving_repository, tmp_path, kwargs, error,
                                                      message):
    np.save(tmp_path / "x.npy", np.zeros((3, 28, 28), np.uint8))
    args = {"ops": "score", "repository": serving_repository, "progress": False, **kwargs}
    with pytest.raises(error, match=message):
        run_batch(args.pop("ops"), tmp_path / "x.npy", tmp_path / "out.parquet", **args)
    assert not (tmp_path / "out.parquet").exists()


def test_existing_output_needs_overwrite_and_bad_input_is_refused(serving_repository, tmp_path):
    (tmp_path / "out.parquet").mkdir()
    np.save(tmp_path / "x.npy", np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(InputError, match="already exists; pass overwrite=True"):
        run_batch("score", tmp_path / "x.npy", tmp_path / "out.parquet", repository=serving_repository)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no readable images"):
        run_batch("score", tmp_path / "empty", tmp_path / "o2.parquet", repository=serving_repository)
    np.save(tmp_path / "small.npy", np.zeros((3, 14, 14), np.uint8))
    with pytest.raises(InputError, match=r"input images are \(1, 14, 14\) but model"):
        run_batch("score", tmp_path / "small.npy", tmp_path / "o3.parquet", repository=serving_repository)
    shutil.rmtree(tmp_path / "out.parquet")
