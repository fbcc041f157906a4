"""``aeserve batch``: the verb runs a real Ray job and refuses bad arguments with one line."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

import aeserve
from aeserve.data import load_dataset
from cli_helpers import run_cli


def test_batch_reconstruct_an_npz_with_one_worker(ray_cluster, serving_repository, tmp_path, capsys):
    x = load_dataset("mnist", "test", limit=30).x
    np.savez(tmp_path / "d.npz", x=x)
    out = tmp_path / "rec.parquet"
    code, stdout, err = run_cli(["batch", "reconstruct", "--input", str(tmp_path / "d.npz"), "--output", str(out),
                                 "--repo", str(serving_repository), "--chunk-rows", "8", "--quiet"], capsys)
    assert code == 0, err
    assert f"wrote 30 rows (reconstruct) to {out}: 4 chunks, 0 reused" in stdout
    table = pq.read_table(out)
    assert table.column("row_id").to_pylist() == [f"d.npz[x]:{i}" for i in range(30)]
    with aeserve.Client(repository=serving_repository) as c:
        np.testing.assert_allclose(np.asarray(table.column("x_hat").to_pylist()), c.reconstruct(x).reshape(30, -1),
                                   atol=1e-6)
    code, _, err = run_cli(["batch", "reconstruct", "--input", str(tmp_path / "d.npz"), "--output", str(out),
                            "--repo", str(serving_repository)], capsys)
    assert code == 2 and "already exists; pass overwrite=True (--overwrite)" in err and "Traceback" not in err


def test_bad_arguments_exit_2_with_one_line(serving_repository, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((2, 28, 28), np.uint8))
    base = ["--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "o.parquet"), "--repo",
            str(serving_repository)]
    for argv, message in (
        (["batch", "score", *base, "--workers", "0"], "workers must be an integer >= 1"),
        (["batch", "score", "--input", str(tmp_path / "none"), "--output", str(tmp_path / "o.parquet")], "does not exist"),
        (["batch", "score", *base, "--url", "http://127.0.0.1:9"], "127.0.0.1:9"),
    ):
        code, _, err = run_cli(argv, capsys)
        assert code == 2 and message in err and "Traceback" not in err, err
    code, _, err = run_cli(["batch", "paint", *base], capsys)
    assert code == 2 and "Invalid value" in err
    assert not (tmp_path / "o.parquet").exists()
