"""aeserve.distributed.ray_batch: Client operations over a ray.data.Dataset, one Client per actor."""

from __future__ import annotations

import numpy as np
import pytest

import aeserve
from aeserve.data import load_dataset
from aeserve.distributed import ray_batch
from aeserve.errors import ConfigError


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    x = load_dataset("mnist", "test", limit=48).x
    path = tmp_path_factory.mktemp("rb") / "digits.npy"
    np.save(path, x)
    return path, x


def test_read_and_map_a_dataset_equal_one_client(ray_cluster, digits, serving_repository):
    path, x = digits
    ds = ray_batch.read_dataset(path, chunk_rows=20)
    out = ray_batch.map_dataset(ds, ["encode", "reconstruct", "score"], repository=serving_repository, workers=1,
                                batch_size=16).take_all()
    out.sort(key=lambda row: int(row["row_id"].rsplit(":", 1)[1]))
    assert [r["row_id"] for r in out] == [f"digits.npy:{i}" for i in range(48)]
    with aeserve.Client(repository=serving_repository) as c:
        np.testing.assert_allclose(np.stack([r["code"] for r in out]), c.encode(x), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(np.stack([r["x_hat"] for r in out]), c.reconstruct(x).reshape(48, -1), atol=1e-6)
        np.testing.assert_allclose([r["score"] for r in out], c.anomaly_score(x), rtol=1e-6)


def test_compute_names_its_columns_and_passes_options(serving_repository, digits):
    _, x = digits
    with aeserve.Client(repository=serving_repository) as c:
        cols = ray_batch.compute(c, ["score", "compress"], x[:5], {"compress": {"bits": 5}})
        assert set(cols) == {"score", "payload"}
        assert list(cols["payload"]) == [c.compress(x[i:i + 1], bits=5) for i in range(5)]
        if hasattr(c, "features"):
            np.testing.assert_allclose(ray_batch.compute(c, ["features"], x[:5], {})["features"],
                                       c.features(x[:5]).reshape(5, -1))
        else:
            with pytest.raises(ConfigError, match="needs Client.features"):
                ray_batch.compute(c, ["features"], x[:5], {})


@pytest.mark.parametrize("ops, options, message", [
    ([], None, "distinct names"),
    (["score", "score"], None, "distinct names"),
    ("paint", None, "distinct names"),
    ("score", {"compress": {"bits": 4}}, "does not run"),
])
def test_bad_operations_are_refused(ops, options, message):
    with pytest.raises(ConfigError, match=message):
        ray_batch.check_ops(ops, options)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_workers_must_be_a_positive_integer(workers):
    with pytest.raises(ConfigError, match="workers must be an integer >= 1"):
        ray_batch.map_dataset(None, "score", workers=workers)


def test_a_local_ray_larger_than_this_machine_is_refused_before_it_starts(monkeypatch):
    import os

    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("Ray must not start"))
    too_many = len(os.sched_getaffinity(0)) + 1
    with pytest.raises(ConfigError, match=f"{too_many} workers need {too_many} CPUs"):
        ray_batch.connect_ray(None, num_cpus=too_many)


def test_without_the_distributed_extra_the_error_names_it(monkeypatch, tmp_path):
    import sys

    from aeserve.distributed.batch_job import run_batch

    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    with pytest.raises(ConfigError, match=r"pip install 'aeserve\[distributed\]'"):
        run_batch("score", tmp_path, tmp_path / "out.parquet")
