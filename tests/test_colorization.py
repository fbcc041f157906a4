"""Colourisation end to end on colour data: a generated RGB PNG folder -> `aeserve train
--noise grayscale` -> `aeserve export` -> `aeserve colorize` on greyscale PNGs (no colour
dataset ships, so the test makes one)."""

from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import run_cli
from PIL import Image

from aeserve import Client, restoration

COLOURS = np.array([[0.9, 0.1, 0.1], [0.1, 0.2, 0.9], [0.1, 0.8, 0.2]], np.float32)


def _image(rng: np.random.Generator) -> np.ndarray:
    """A 16x16 RGB image: a bright square on a dark ground; its colour follows its position
    (top-left red, bottom-right blue, elsewhere green), so grey alone tells where, hence which colour."""
    img = np.full((3, 16, 16), 0.05, np.float32)
    t, l = rng.integers(0, 9, 2)
    c = 0 if t < 4 and l < 4 else 1 if t > 4 and l > 4 else 2
    img[:, t:t + 7, l:l + 7] = COLOURS[c][:, None, None]
    return img


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("rgb")
    rng = np.random.default_rng(0)
    for split, n in (("train", 600), ("test", 60)):
        d = root / split
        d.mkdir()
        for i in range(n):
            Image.fromarray((np.moveaxis(_image(rng), 0, -1) * 255).astype(np.uint8)).save(d / f"{i:04d}.png")
    return root


def test_colorize_end_to_end(folder, tmp_path, capsys):
    ckpt, repo = tmp_path / "color.pt", tmp_path / "repo"
    code, _, err = run_cli(["train", "--family", "dae", "--arch", "mlp", "--hidden", "128", "--latent", "16",
                            "--noise", "grayscale", "--data", str(folder / "train"), "--epochs", "15",
                            "--lr", "3e-3", "--quiet", "--out", str(ckpt)], capsys)
    assert code == 0, err
    code, _, err = run_cli(["export", "--ckpt", str(ckpt), "--repo", str(repo), "--name", "shapes_color",
                            "--kind", "cpu", "--max-batch", "64"], capsys)
    assert code == 0, err
    gray_dir = tmp_path / "gray"
    gray_dir.mkdir()
    truth = np.stack([np.moveaxis(np.asarray(Image.open(p), np.float32) / 255, -1, 0)
                      for p in sorted((folder / "test").glob("*.png"))[:12]])
    paths = []
    for i, g in enumerate(restoration.to_gray(truth)):
        paths.append(str(gray_dir / f"{i:02d}.png"))
        Image.fromarray(np.rint(g[0] * 255).astype(np.uint8)).save(paths[-1])
    out = tmp_path / "colour.npy"
    code, stdout, err = run_cli(["colorize", *paths, "--model", "shapes_color", "--repo", str(repo),
                                 "--out", str(out)], capsys)
    assert code == 0, err
    colour = np.load(out)
    assert colour.shape == (12, 3, 16, 16)
    grey_err = float(np.mean((restoration.gray_input(restoration.to_gray(truth), 3) - truth) ** 2))
    assert float(np.mean((colour - truth) ** 2)) < 0.75 * grey_err   # colour recovered (measured 0.53x), not just grey
    with Client(repository=repo, model="shapes_color") as c:
        assert c.card.restores == "colorize"
        np.testing.assert_allclose(c.colorize(restoration.to_gray(truth)), colour, atol=2 / 255)
