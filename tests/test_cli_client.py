"""CLI client verbs end to end via ``aeserve.cli.main`` over a repository of untrained models."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from _repo_fixtures import images
from PIL import Image

import aeserve
from aeserve.cli import main
from aeserve.compress import peek_header
from aeserve.images import save_grid


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def cli(client_repo, capsys):  # noqa: F811
    def call(*argv: str, model: str = "t_vae") -> tuple[int, str, str]:
        return run([argv[0], "--repo", str(client_repo), "--model", model, "--quiet", *argv[1:]], capsys)
    return call


@pytest.fixture()
def data_npy(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, images(12, seed=1))
    return path


def _png_size(path) -> tuple[int, int]:
    with Image.open(path) as img:
        assert img.format == "PNG"
        return img.size


def test_generate_png_grid_and_npy(cli, client_repo, tmp_path):  # noqa: F811
    code, out, err = cli("generate", "-n", "10", "--seed", "3", "--out", str(tmp_path / "g.png"))
    assert code == 0, err
    assert "10 images" in out
    assert _png_size(tmp_path / "g.png") == (4 * 28 + 3 * 2, 3 * 28 + 2 * 2)  # 4 columns, 3 rows, pad 2
    code, _, err = cli("generate", "-n", "10", "--seed", "3", "--out", str(tmp_path / "g.npy"))
    assert code == 0, err
    with aeserve.Client(repository=client_repo, model="t_vae") as c:
        assert np.array_equal(np.load(tmp_path / "g.npy"), c.generate(10, seed=3))


def test_interpolate_strip(cli, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    x = images(2, seed=4)
    save_grid(x[:1], a)
    save_grid(x[1:], b)
    code, out, err = cli("interpolate", str(a), str(b), "--steps", "5", "--method", "lerp",
                         "--out", str(tmp_path / "s.png"))
    assert code == 0, err
    assert _png_size(tmp_path / "s.png") == (5 * 28 + 4 * 2, 28)
    code, _, err = cli("interpolate", str(a), str(b), str(a), "--steps", "4", "--out", str(tmp_path / "p.npy"))
    assert code == 0, err
    assert np.load(tmp_path / "p.npy").shape == ((4 - 1) * 2 + 1, 1, 28, 28)


def test_denoise(cli, data_npy, tmp_path):
    code, _, err = cli("denoise", str(data_npy), "--out", str(tmp_path / "d.npy"))
    assert code == 0, err
    out = np.load(tmp_path / "d.npy")
    assert out.shape == (12, 1, 28, 28) and out.dtype == np.float32
    code, _, err = cli("denoise", str(data_npy), "--limit", "6", "--compare", "--ncol", "3",
                       "--out", str(tmp_path / "d.png"))
    assert code == 0, err
    assert _png_size(tmp_path / "d.png") == (3 * 28 + 2 * 2, 4 * 28 + 3 * 2)  # in/out/in/out rows


def test_compress_decompress_round_trip(cli, client_repo, data_npy, tmp_path, capsys):  # noqa: F811
    payload = tmp_path / "x.aez"
    code, out, err = cli("compress", str(data_npy), "--out", str(payload), "--psnr")
    assert code == 0, err
    assert "12 images" in out and "B/image" in out and "PSNR" in out
    blob = payload.read_bytes()
    # decompress without --model: the payload names its model
    code, out, err = run(["decompress", str(payload), "--repo", str(client_repo), "--quiet",
                          "--out", str(tmp_path / "y.npy")], capsys)
    assert code == 0, err
    with aeserve.Client(repository=client_repo, model="t_vae") as c:
        assert np.array_equal(np.load(tmp_path / "y.npy"), c.decompress(blob))
    code, _, err = cli("decompress", str(payload), "--out", str(tmp_path / "y.png"))
    assert code == 0, err
    assert _png_size(tmp_path / "y.png") == (4 * 28 + 3 * 2, 3 * 28 + 2 * 2)


def test_decompress_refuses_wrong_model_and_corruption(cli, data_npy, tmp_path):
    payload = tmp_path / "x.aez"
    assert cli("compress", str(data_npy), "--out", str(payload))[0] == 0
    code, _, err = cli("decompress", str(payload), "--out", str(tmp_path / "y.png"), model="t_ae")
    assert code == 2 and "error:" in err and "'t_vae'" in err and "'t_ae'" in err
    assert not (tmp_path / "y.png").exists()
    bad = bytearray(payload.read_bytes())
    bad[len(bad) // 2] ^= 0x10
    (tmp_path / "bad.aez").write_bytes(bytes(bad))
    code, _, err = cli("decompress", str(tmp_path / "bad.aez"), "--out", str(tmp_path / "y.png"))
    assert code == 2 and "checksum" in err and err.count("\n") == 1
    assert not (tmp_path / "y.png").exists()


def test_score_csv(cli, data_npy, tmp_path):
    code, out, err = cli("score", str(data_npy), "--out", str(tmp_path / "s.csv"))
    assert code == 0, err
    with open(tmp_path / "s.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["index", "score", "is_anomaly"] and len(rows) == 13
    assert [int(r[0]) for r in rows[1:]] == list(range(12))
    assert all(float(r[1]) >= 0 and r[2] in ("0", "1") for r in rows[1:])  # card threshold (mse) used
    code, out, err = cli("score", str(data_npy), "--limit", "4", "--method", "elbo", "--k", "2",
                         "--out", str(tmp_path / "e.csv"))
    assert code == 0, err
    rows = list(csv.reader(open(tmp_path / "e.csv", newline="")))
    assert len(rows) == 5 and all(r[2] == "" for r in rows[1:]) and "--threshold" in out
    code, _, err = cli("score", str(data_npy), "--method", "elbo", "--threshold", "1e9",
                       "--out", str(tmp_path / "t.csv"))
    assert code == 0, err
    assert all(r[2] == "0" for r in list(csv.reader(open(tmp_path / "t.csv", newline="")))[1:])


def test_latent_plot(cli, tmp_path):
    data = tmp_path / "labelled.npz"
    np.savez(data, x=images(300, seed=6), y=np.arange(300) % 10)
    for model in ("t_ae", "t_vae"):  # 2-d scatter, then PCA of 16-d
        out = tmp_path / f"{model}.png"
        code, msg, err = cli("latent-plot", str(data), "--limit", "250", "--out", str(out), model=model)
        assert code == 0, err
        assert "250 codes" in msg
        w, h = _png_size(out)
        assert w > 400 and h > 400
    # no input given: the test split of the model's own dataset (the card says mnist)
    code, msg, err = cli("latent-plot", "--limit", "100", "--out", str(tmp_path / "own.png"), model="t_ae")
    assert code == 0, err
    assert "100 codes" in msg and (tmp_path / "own.png").exists()


def test_latent_plot_of_a_folder_without_splits_names_its_classes(cli, tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    x = images(8, seed=2)
    for i, img in enumerate(x):
        folder = tmp_path / "pets" / ("dog" if i % 2 else "cat")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.rint(img[0] * 255).astype(np.uint8)).save(folder / f"{i}.png")
    code, msg, err = cli("latent-plot", "--data", str(tmp_path / "pets"), "--out", str(tmp_path / "p.png"), model="t_ae")
    assert code == 2 and "has no 'test' split; pass --split all" in err and "aeserve.data" not in err
    assert not (tmp_path / "p.png").exists()
    legends = []
    original = Axes.legend
    monkeypatch.setattr(Axes, "legend", lambda self, *a, **k: (legends.append(list(a[1])), original(self, *a, **k))[1])
    code, msg, err = cli("latent-plot", "--data", str(tmp_path / "pets"), "--split", "all",
                         "--out", str(tmp_path / "p.png"), model="t_ae")
    assert code == 0, err
    assert "8 codes" in msg and legends == [["cat", "dog"]]


@pytest.mark.parametrize("argv", [
    ["generate", "-n", "0", "--out", "{tmp}/o.png"],
    ["generate", "--seed", "-1", "--out", "{tmp}/o.png"],
    ["generate", "--temperature", "nan", "--out", "{tmp}/o.png"],
    ["generate", "--out", "{tmp}/o.jpg"],
    ["interpolate", "{tmp}/a.png", "--out", "{tmp}/o.png"],
    ["interpolate", "{tmp}/a.png", "{tmp}/a.png", "--steps", "1", "--out", "{tmp}/o.png"],
    ["interpolate", "{tmp}/a.png", "{tmp}/a.png", "--method", "cubic", "--out", "{tmp}/o.png"],
    ["interpolate", "{tmp}/a.png", "{tmp}/missing.png", "--out", "{tmp}/o.png"],
    ["denoise", "--out", "{tmp}/o.png"],
    ["denoise", "{tmp}/missing.npy", "--out", "{tmp}/o.png"],
    ["denoise", "{tmp}/wrong.npy", "--out", "{tmp}/o.png"],
    ["compress", "{tmp}/x.npy", "--data", "mnist", "--out", "{tmp}/o.aez"],
    ["compress", "{tmp}/x.npy", "--limit", "0", "--out", "{tmp}/o.aez"],
    ["decompress", "{tmp}/x.npy", "--out", "{tmp}/o.png"],
    ["decompress", "{tmp}/missing.aez", "--out", "{tmp}/o.png"],
    ["score", "{tmp}/x.npy", "--method", "magic", "--out", "{tmp}/o.csv"],
    ["score", "{tmp}/x.npy", "--method", "elbo", "--k", "0", "--out", "{tmp}/o.csv"],
    ["score", "{tmp}/x.npy", "--out", "{tmp}/o.txt"],
    ["latent-plot", "{tmp}/x.npy", "--posterior", "mode", "--out", "{tmp}/o.png"],
])
def test_bad_inputs_exit_2_without_output(cli, tmp_path, data_npy, argv):
    save_grid(images(1), tmp_path / "a.png")
    np.save(tmp_path / "wrong.npy", np.zeros((3, 2, 28, 28), np.float32))
    argv = [a.format(tmp=tmp_path) for a in argv]
    code, _, err = cli(*argv)
    assert code == 2, err
    assert err.startswith("error:") or "Error" in err
    assert not list(tmp_path.glob("o.*")) and not list(tmp_path.glob(".tmp-*"))


def test_unknown_model_and_missing_repository(client_repo, tmp_path, capsys):  # noqa: F811
    code, _, err = run(["generate", "--repo", str(client_repo), "--model", "nope", "--out",
                        str(tmp_path / "o.png")], capsys)
    assert code == 2 and "t_vae" in err  # the message lists what exists
    code, _, err = run(["generate", "--repo", str(tmp_path / "none"), "--out", str(tmp_path / "o.png")], capsys)
    assert code == 2 and err.startswith("error:")
    assert not (tmp_path / "o.png").exists()


@pytest.mark.triton
@pytest.mark.parametrize("scheme", ["http", "grpc"])
def test_verbs_over_triton_match_embedded(triton_server, serving_repository, tmp_path, capsys, scheme):
    url = triton_server.url_http if scheme == "http" else triton_server.url_grpc
    np.save(tmp_path / "x.npy", images(20, seed=2))
    base = ["--url", url, "--model", "mnist_vae", "--quiet"]
    assert run(["generate", "-n", "12", "--seed", "5", "--out", str(tmp_path / "g.npy"), *base], capsys)[0] == 0
    assert run(["compress", str(tmp_path / "x.npy"), "--out", str(tmp_path / "x.aez"), *base], capsys)[0] == 0
    assert run(["decompress", str(tmp_path / "x.aez"), "--out", str(tmp_path / "y.npy"), *base], capsys)[0] == 0
    assert run(["score", str(tmp_path / "x.npy"), "--out", str(tmp_path / "s.csv"), *base], capsys)[0] == 0
    with aeserve.Client(repository=serving_repository, model="mnist_vae") as c:
        assert np.array_equal(np.load(tmp_path / "g.npy"), c.generate(12, seed=5))
        blob = (tmp_path / "x.aez").read_bytes()
        h = peek_header(blob)
        assert (h.model, h.version, h.n) == ("mnist_vae", c.version, 20)
        assert np.allclose(np.load(tmp_path / "y.npy"), c.decompress(blob), atol=1e-5)  # cross-runtime payload
        scores = [float(r[1]) for r in list(csv.reader(open(tmp_path / "s.csv", newline="")))[1:]]
        assert np.allclose(scores, c.anomaly_score(images(20, seed=2)), rtol=1e-5, atol=1e-9)
