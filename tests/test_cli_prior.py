"""``aeserve fit-prior``, ``aeserve shift`` and ``generate --label/--by-class`` end to end."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from _repo_fixtures import images, labelled_npz
from cli_helpers import run_cli
from PIL import Image

import aeserve


@pytest.fixture(scope="module")
def repo(client_repo, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("cli_prior") / "repo"
    shutil.copytree(client_repo, root)
    return root


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as img:
        return img.size


def test_fit_prior_file_then_version_then_generate(repo, tmp_path, capsys):
    out, data = tmp_path / "prior.json", str(labelled_npz(tmp_path / "data.npz"))
    code, text, err = run_cli(["fit-prior", "--model", "t_ae", "--repo", str(repo), "--data", data,
                               "--budget-kb", "2", "--out", str(out), "--quiet"], capsys)
    assert code == 0, err
    entries = json.loads(out.read_text())
    assert {"prior", "prior.sha256", "prior.calibration"} <= set(entries) and "components" in text
    with aeserve.Client(repository=repo, model="t_ae") as c:
        assert c.version == 1 and c.prior is None  # --out leaves the repository alone
    code, text, err = run_cli(["fit-prior", "--model", "t_ae", "--repo", str(repo), "--data", data,
                               "--budget-kb", "2", "--quiet"], capsys)
    assert code == 0, err and "version 2" in text
    with aeserve.Client(repository=repo, model="t_ae") as c:
        assert c.version == 2 and c.card.get("prior") == entries["prior"]  # same data and seed: same prior
    base = ["generate", "--repo", str(repo), "--model", "t_ae", "--quiet"]
    code, text, err = run_cli(base + ["-n", "6", "--label", "3", "--seed", "2", "--out", str(tmp_path / "g.npy")],
                              capsys)
    assert code == 0, err and "label 3" in text
    with aeserve.Client(repository=repo, model="t_ae") as c:
        np.testing.assert_array_equal(np.load(tmp_path / "g.npy"), c.generate(6, seed=2, label=3))
    code, _, err = run_cli(base + ["-n", "4", "--by-class", "--out", str(tmp_path / "rows.png")], capsys)
    assert code == 0, err
    assert png_size(tmp_path / "rows.png") == (4 * 28 + 3 * 2, 10 * 28 + 9 * 2)  # one row per class
    code, _, err = run_cli(base + ["-n", "4", "--prior", "standard", "--out", str(tmp_path / "s.png")], capsys)
    assert code == 2 and "fit-prior" in err and not (tmp_path / "s.png").exists()
    code, _, err = run_cli(base + ["-n", "4", "--label", "nine", "--out", str(tmp_path / "s.png")], capsys)
    assert code == 2 and "unknown class name" in err

    shift = ["shift", "--repo", str(repo), "--model", "t_ae", "--quiet"]
    x = tmp_path / "x.npy"
    np.save(x, images(3))
    code, text, err = run_cli(shift + [str(x), "--target", "7", "--source", "1", "--alphas", "0,0.5,1,2",
                                       "--out", str(tmp_path / "shift.png")], capsys)
    assert code == 0, err
    assert png_size(tmp_path / "shift.png") == (4 * 28 + 3 * 2, 3 * 28 + 2 * 2)
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, images(4, seed=1))
    np.save(b, images(5, seed=2))
    code, _, err = run_cli(shift + [str(x), "--with", str(a), "--without", str(b), "--out", str(tmp_path / "s.npy")],
                           capsys)
    assert code == 0, err
    with aeserve.Client(repository=repo, model="t_ae") as c:
        want = c.shift(images(3), c.attribute_vector(images(4, seed=1), images(5, seed=2)),
                       alphas=[0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), want.reshape(-1, 1, 28, 28), atol=1e-6)
    for extra, match in ((["--alphas", ""], "non-empty"), (["--alphas", "0,x"], "comma-separated"),
                         (["--alphas", "0,nan"], "NaN"), ([], "either --with")):
        args = extra + (["--target", "7", "--source", "1"] if extra else ["--target", "7"])
        code, _, err = run_cli(shift + [str(x), *args, "--out", str(tmp_path / "bad.png")], capsys)
        assert code == 2 and match in err, err
