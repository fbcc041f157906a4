"""``aeserve batch``: a PNG-folder job through the verb, resumed after an interruption; bad arguments."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
from cli_helpers import run_cli
from PIL import Image

import aeserve
from aeserve.data import load_dataset
from aeserve.images import load_images


def test_a_png_folder_job_resumes_where_it_stopped(ray_cluster, serving_repository, tmp_path, capsys):
    x = load_dataset("mnist", "test", limit=40).x
    (tmp_path / "pngs").mkdir()
    for i, img in enumerate(x):
        Image.fromarray(np.rint(img[0] * 255).astype(np.uint8)).save(tmp_path / "pngs" / f"{i:03d}.png")
    out = tmp_path / "codes.parquet"
    argv = ["batch", "encode", "--input", str(tmp_path / "pngs"), "--output", str(out), "--repo",
            str(serving_repository), "--chunk-rows", "10", "--quiet"]
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0, err
    assert f"wrote 40 rows (encode) to {out}: 4 chunks, 0 reused" in stdout
    codes = pq.read_table(out)
    assert codes.column("row_id").to_pylist() == [f"{i:03d}.png" for i in range(40)]
    with aeserve.Client(repository=serving_repository) as c:
        expected = c.encode(load_images(sorted((tmp_path / "pngs").glob("*.png"))))
    np.testing.assert_allclose(np.asarray(codes.column("code").to_pylist(), np.float32), expected, atol=1e-6)
    # an output that exists is refused without --overwrite
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "already exists; pass overwrite=True (--overwrite)" in err and "Traceback" not in err
    # an interrupted run: two parts written, two missing; the rerun writes only the missing two
    staging = out.with_name("codes.parquet.partial")
    out.rename(staging)
    for k in (1, 3):
        (staging / f"part-{k:06d}.parquet").unlink()
    kept = (staging / "part-000000.parquet").stat().st_mtime_ns
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0 and "4 chunks, 2 reused from an earlier run" in stdout, err
    assert (out / "part-000000.parquet").stat().st_mtime_ns == kept
    assert pq.read_table(out).equals(codes)


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
