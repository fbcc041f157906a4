"""aeserve.eval.concurrency: perf_analyzer-like sweep; embedded in the default suite, Triton marked."""

from __future__ import annotations

import pytest

from aeserve.errors import ConfigError
from aeserve.eval.concurrency import check_levels, format_sweep, sweep
from aeserve.repository import Repository


def _model(repo) -> str:
    names = Repository(repo).models()
    return "mnist_vae" if "mnist_vae" in names else names[0]


def test_embedded_sweep_rows(shipped_repository):
    rows = sweep(None, _model(shipped_repository), (1, 3), seconds=0.2, repository=str(shipped_repository))
    assert [r["concurrency"] for r in rows] == [1, 3]
    for r in rows:
        assert r["requests"] > 0 and r["requests_per_s"] > 0 and r["images_per_s"] == r["requests_per_s"]
        assert 0 < r["p50_ms"] <= r["p99_ms"] and r["avg_batch"] is None
    table = format_sweep(rows)
    assert table.splitlines()[0].split()[:3] == ["concurrency", "req/s", "images/s"] and len(table.splitlines()) == 3


@pytest.mark.parametrize("levels", [(), (0, 4), ("a",)])
def test_bad_levels(levels):
    with pytest.raises(ConfigError, match="concurrency levels"):
        check_levels(levels)


@pytest.mark.triton
def test_triton_sweep_reports_the_servers_batching(triton_server, serving_repository):
    rows = sweep(triton_server.url_grpc, _model(serving_repository), (1, 8), seconds=1.0)
    assert all(r["avg_batch"] is not None and r["avg_batch"] >= 1.0 for r in rows)
    assert rows[0]["avg_batch"] == pytest.approx(1.0)           # one client: nothing to merge
