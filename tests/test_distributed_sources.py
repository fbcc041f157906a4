"""aeserve.distributed.sources: planning inputs (formats, row ids, chunks) and typed refusals."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from aeserve.distributed.sources import load_chunk, plan_input
from aeserve.errors import ConfigError, DataError

RNG = np.random.default_rng(0)


def _png_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def _all_rows(plan):
    ids, xs = [], []
    for c in plan.chunks:
        i, x = load_chunk(plan, c, (1, 8, 8))
        ids += i
        xs.append(x)
    return ids, np.concatenate(xs)


def test_npy_npz_shards_and_png_folder_in_one_directory(tmp_path):
    a = RNG.integers(0, 256, (7, 8, 8), dtype=np.uint8)
    b = RNG.random((5, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    (tmp_path / "sub").mkdir()
    np.savez(tmp_path / "sub" / "b.npz", x=b)
    (tmp_path / "imgs").mkdir()
    for k in range(3):
        Image.fromarray(a[k]).save(tmp_path / "imgs" / f"{k}.png")
    plan = plan_input(tmp_path, chunk_rows=3)
    assert plan.rows == 15 and plan.sample_shape == (1, 8, 8)
    assert [len(range(c.start, c.stop)) for c in plan.chunks] == [3, 3, 1, 3, 2, 3]
    ids, x = _all_rows(plan)
    assert ids == ([f"a.npy:{i}" for i in range(7)] + [f"sub/b.npz[x]:{i}" for i in range(5)]
                   + ["imgs/0.png", "imgs/1.png", "imgs/2.png"])
    np.testing.assert_array_equal(x[:7, 0], a)
    np.testing.assert_array_equal(x[7:12], b)
    np.testing.assert_allclose(x[12:, 0], a[:3] / 255.0, atol=1e-7)  # PNGs come back as float in [0, 1]
    # ids do not depend on chunking
    assert _all_rows(plan_input(tmp_path, chunk_rows=100))[0] == ids


def test_parquet_image_columns_bytes_structs_and_pixel_lists(tmp_path):
    imgs = RNG.integers(0, 256, (4, 8, 8), dtype=np.uint8)
    pq.write_table(pa.table({"image": [_png_bytes(i) for i in imgs]}), tmp_path / "bytes.parquet")
    pq.write_table(pa.table({"img": [{"bytes": _png_bytes(i), "path": "x"} for i in imgs]}), tmp_path / "hf.parquet")
    pq.write_table(pa.table({"image": [i.reshape(-1).tolist() for i in imgs]}), tmp_path / "lists.parquet")
    for name, column in (("bytes", "image"), ("hf", "img"), ("lists", "image")):
        plan = plan_input(tmp_path / f"{name}.parquet", column=column, chunk_rows=3)
        ids, x = _all_rows(plan)
        assert ids == [f"{name}.parquet:{i}" for i in range(4)]
        np.testing.assert_array_equal(x.reshape(4, 8, 8), imgs)


@pytest.mark.parametrize("make, message", [
    (lambda d: (d / "notes.txt").write_text("hi"), "no readable images"),
    (lambda d: np.save(d / "empty.npy", np.zeros((0, 8, 8), np.uint8)), "no readable images"),
    (lambda d: (np.save(d / "a.npy", np.zeros((2, 8, 8), np.uint8)), np.save(d / "b.npy", np.zeros((2, 9, 9), np.uint8))),
     "mixed shapes across shards"),
    (lambda d: [Image.fromarray(np.zeros((s, s), np.uint8)).save(d / f"{s}.png") for s in (8, 9)], "mixed shapes"),
    (lambda d: (d / "bad.npy").write_bytes(b"not numpy"), "cannot read"),
    (lambda d: np.save(d / "labels.npy", np.zeros(5, np.int64)), "not a batch of images"),
    (lambda d: pq.write_table(pa.table({"pixels": [[0] * 64]}), d / "p.parquet"), "no column 'image'"),
])
def test_bad_inputs_are_refused_while_planning(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(DataError, match=message):
        plan_input(tmp_path)


def test_missing_path_and_bad_chunk_size(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        plan_input(tmp_path / "nope")
    with pytest.raises(ConfigError, match="chunk_rows"):
        plan_input(tmp_path, chunk_rows=0)


def test_fingerprint_changes_with_the_files(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 8, 8), np.uint8))
    first = plan_input(tmp_path).fingerprint
    assert plan_input(tmp_path).fingerprint == first
    np.save(tmp_path / "a.npy", np.ones((3, 8, 8), np.uint8))
    assert plan_input(tmp_path).fingerprint != first
    assert plan_input(tmp_path, chunk_rows=1).fingerprint != plan_input(tmp_path).fingerprint


def test_out_of_range_pixels_are_refused_when_loaded(tmp_path):
    np.save(tmp_path / "a.npy", np.full((2, 8, 8), 2.0, np.float32))
    plan = plan_input(tmp_path)
    with pytest.raises(DataError):
        load_chunk(plan, plan.chunks[0])
