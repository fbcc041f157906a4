"""aeserve inpaint / upscale / colorize / anomaly-map / classify: PNGs in, PNGs/CSV out."""

from __future__ import annotations

import numpy as np
import pytest
from apps_helpers import restoration_repository
from cli_helpers import run_cli
from eval_fixtures import write_prior_vae
from PIL import Image


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = restoration_repository(tmp_path_factory.mktemp("cli_restore") / "repo")
    write_prior_vae(root, "prior")
    return root


def _png(path, arr):
    Image.fromarray(arr).save(path)
    return str(path)


def _read(path):
    return np.asarray(Image.open(path))


def test_inpaint_with_box_and_with_mask_png(repo, tmp_path, capsys):
    digit = _png(tmp_path / "d.png", np.full((28, 28), 200, np.uint8))
    out = tmp_path / "filled.png"
    code, stdout, err = run_cli(["inpaint", digit, "--box", "7,7,14,14", "--model", "t_inpaint", "--repo", str(repo),
                                 "--out", str(out)], capsys)
    assert code == 0, err
    img = _read(out)
    assert img.shape == (28, 28) and img[0, 0] == 200 and img[14, 14] == 128   # identity: hole = fill 0.5
    mask = np.zeros((28, 28), np.uint8)
    mask[:4] = 255
    code, _, err = run_cli(["inpaint", digit, "--mask", _png(tmp_path / "m.png", mask), "--model", "t_inpaint",
                            "--repo", str(repo), "--out", str(tmp_path / "f.npy")], capsys)
    assert code == 0, err
    arr = np.load(tmp_path / "f.npy")
    assert np.all(arr[0, 0, :4] == 0.5) and np.allclose(arr[0, 0, 4:], 200 / 255)


@pytest.mark.parametrize("args,match", [
    (["--box", "7,7,14"], "four integers"), ([], "exactly one of"), (["--box", "40,0,2,2"], "inside"),
])
def test_inpaint_bad_masks_write_nothing(repo, tmp_path, capsys, args, match):
    digit = _png(tmp_path / "d.png", np.zeros((28, 28), np.uint8))
    out = tmp_path / "o.png"
    code, _, err = run_cli(["inpaint", digit, *args, "--model", "t_inpaint", "--repo", str(repo),
                            "--out", str(out)], capsys)
    assert code == 2 and match in err and not out.exists()


def test_inpaint_grey_mask_png_is_refused(repo, tmp_path, capsys):
    digit = _png(tmp_path / "d.png", np.zeros((28, 28), np.uint8))
    out = tmp_path / "o.png"
    code, _, err = run_cli(["inpaint", digit, "--mask", _png(tmp_path / "m.png", np.full((28, 28), 100, np.uint8)),
                            "--model", "t_inpaint", "--repo", str(repo), "--out", str(out)], capsys)
    assert code == 2 and "not binary" in err and not out.exists()


def test_upscale_low_res_png_and_from_full_compare(repo, tmp_path, capsys):
    low = _png(tmp_path / "low.png", (np.arange(49).reshape(7, 7) * 5).astype(np.uint8))
    out = tmp_path / "big.png"
    code, _, err = run_cli(["upscale", low, "--model", "t_sr", "--repo", str(repo), "--out", str(out)], capsys)
    assert code == 0, err
    big = _read(out)
    assert big.shape == (28, 28) and big[0, 3] == 0 and big[0, 4] == 5   # nearest x4 from the identity model
    code, _, err = run_cli(["upscale", "--data", "mnist", "--limit", "3", "--from-full", "4", "--compare",
                            "--model", "t_sr", "--repo", str(repo), "--out", str(tmp_path / "s.png")], capsys)
    assert code == 0, err
    assert _read(tmp_path / "s.png").shape == (3 * 28 + 2 * 2, 3 * 28 + 2 * 2)
    code, _, err = run_cli(["upscale", _png(tmp_path / "bad.png", np.zeros((9, 9), np.uint8)), "--model", "t_sr",
                            "--repo", str(repo), "--out", str(tmp_path / "x.png")], capsys)
    assert code == 2 and "(N, 1, 7, 7) for x4" in err and not (tmp_path / "x.png").exists()


def test_colorize_gray_png(repo, tmp_path, capsys):
    gray = _png(tmp_path / "g.png", np.full((16, 16), 90, np.uint8))
    code, _, err = run_cli(["colorize", gray, "--model", "t_color", "--repo", str(repo),
                            "--out", str(tmp_path / "c.png")], capsys)
    assert code == 0, err
    assert _read(tmp_path / "c.png").shape == (16, 16, 3)


def test_anomaly_map_overlay_and_raw_maps(repo, tmp_path, capsys):
    code, stdout, err = run_cli(["anomaly-map", "--data", "mnist", "--limit", "4", "--model", "prior", "--repo",
                                 str(repo), "--method", "nll", "-k", "2", "--out", str(tmp_path / "o.png"),
                                 "--maps", str(tmp_path / "m.npy")], capsys)
    assert code == 0, err
    assert _read(tmp_path / "o.png").shape[2] == 3 and np.load(tmp_path / "m.npy").shape == (4, 1, 28, 28)


def test_classify_writes_csv_with_class_names(repo, tmp_path, capsys):
    out = tmp_path / "p.csv"
    code, stdout, err = run_cli(["classify", "--data", "mnist", "--limit", "5", "--classifier", "t_ident",
                                 "--model", "prior", "--repo", str(repo), "--out", str(out)], capsys)
    assert code == 0, err
    lines = out.read_text().splitlines()
    assert lines[0] == "index,label,class,probability" and len(lines) == 6
    assert lines[1].split(",")[2] in ("zero", "one", "two") and "accuracy" in stdout
