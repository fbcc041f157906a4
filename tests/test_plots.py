"""Tests for aeserve.plots: PCA projection and the latent scatter PNG."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from aeserve.errors import DataError, InputError
from aeserve.plots import latent_scatter, pca_2d


def test_pca_recovers_the_dominant_plane():
    rng = np.random.default_rng(0)
    plane = rng.standard_normal((500, 2)) * [5.0, 2.0]
    basis = np.linalg.qr(rng.standard_normal((8, 8)))[0][:, :2]
    z = plane @ basis.T + 0.01 * rng.standard_normal((500, 8)) + 3.0
    xy, share = pca_2d(z)
    assert xy.shape == (500, 2)
    assert share > 0.999
    assert np.allclose(xy.mean(axis=0), 0.0, atol=1e-9)
    assert np.var(xy[:, 0]) > np.var(xy[:, 1])
    # each component matches the planted one up to sign
    for k in range(2):
        assert abs(np.corrcoef(xy[:, k], plane[:, k])[0, 1]) > 0.999
    again, _ = pca_2d(z[::-1])
    assert np.allclose(again[::-1], xy)  # deterministic signs


def test_pca_small_dims_pass_through():
    z = np.arange(6.0).reshape(3, 2)
    assert np.array_equal(pca_2d(z)[0], z)
    one, share = pca_2d(np.arange(3.0)[:, None])
    assert one.shape == (3, 2) and np.all(one[:, 1] == 0) and share == 1.0


@pytest.mark.parametrize("dim,labels", [(2, True), (16, True), (16, False), (1, True)])
def test_latent_scatter_writes_a_png(tmp_path, dim, labels):
    rng = np.random.default_rng(dim)
    z = rng.standard_normal((300, dim))
    y = rng.integers(0, 10, 300) if labels else None
    out = latent_scatter(z, y, tmp_path / "sub" / "latent.png", title="test")
    assert out.exists() and not list(out.parent.glob(".tmp-*"))
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size[0] > 400 and img.size[1] > 400


def test_latent_scatter_validation(tmp_path):
    z = np.zeros((5, 2))
    with pytest.raises(InputError, match="labels"):
        latent_scatter(z, np.zeros(4, int), tmp_path / "a.png")
    with pytest.raises(InputError, match="labels"):
        latent_scatter(z, np.zeros(5), tmp_path / "a.png")
    with pytest.raises(InputError, match="NaN"):
        latent_scatter(np.full((5, 2), np.nan), None, tmp_path / "a.png")
    with pytest.raises(InputError, match="shape"):
        latent_scatter(np.zeros((0, 2)), None, tmp_path / "a.png")
    assert not (tmp_path / "a.png").exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DataError, match="cannot write"):
        latent_scatter(z, None, blocker / "a.png")


def test_import_does_not_load_matplotlib():
    code = "import sys, aeserve.plots; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_latent_scatter_legend_uses_class_names(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    seen = []
    original = Axes.legend

    def spy(self, *args, **kwargs):
        seen.append(list(args[1]) if len(args) > 1 else None)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "legend", spy)
    z = np.random.default_rng(0).standard_normal((6, 2))
    y = np.array([0, 1, 2, 2, 1, 0])
    latent_scatter(z, y, tmp_path / "named.png", class_names=("cat", "dog", "bird"))
    latent_scatter(z, y, tmp_path / "numbered.png")
    assert seen == [["cat", "dog", "bird"], ["0", "1", "2"]]
    with pytest.raises(InputError, match="class_names has 2 names"):
        latent_scatter(z, y, tmp_path / "short.png", class_names=("cat", "dog"))
    with pytest.raises(InputError, match="no labels"):
        latent_scatter(z, None, tmp_path / "short.png", class_names=("cat",))


def test_plots_leave_the_matplotlib_backend_and_pyplot_alone(tmp_path):
    code = (
        "import sys, matplotlib, numpy as np\n"
        "from aeserve.plots import latent_scatter\n"
        "from aeserve.eval.compression import rate_distortion_plot\n"
        "before = matplotlib.get_backend()\n"
        f"latent_scatter(np.zeros((3, 2)), None, {str(tmp_path / 'a.png')!r})\n"
        "rows = [{'codec': 'png', 'setting': 0, 'bytes_per_image': 10.0, 'psnr': float('inf')},\n"
        "        {'codec': 'jpeg', 'setting': 50, 'bytes_per_image': 5.0, 'psnr': 20.0}]\n"
        f"rate_distortion_plot(rows, {str(tmp_path / 'b.png')!r}, title='t')\n"
        "assert matplotlib.get_backend() == before == 'svg', matplotlib.get_backend()\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    import os

    env = dict(os.environ, MPLBACKEND="svg")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    for name in ("a.png", "b.png"):
        with Image.open(tmp_path / name) as img:
            assert img.format == "PNG"
