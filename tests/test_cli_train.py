"""``aeserve train``: every family x architecture end to end, and every bad input -> exit != 0, no file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aeserve import checkpoint
from aeserve import post_training as ev
from aeserve.cli import main
from aeserve.data import load_dataset, split_validation

FAMILIES = ("ae", "dae", "sparse", "contractive", "vae")


def run(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


@pytest.fixture(scope="module")
def mnist_2k():
    """The exact splits ``--limit 2000 --seed 0`` trains, calibrates and tests on."""
    train, val = split_validation(load_dataset("mnist", "train", limit=2000), 0.1, seed=0)
    test = load_dataset("mnist", "test", limit=2000)
    return torch.as_tensor(train.x), torch.as_tensor(val.x), torch.as_tensor(test.x)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("family", FAMILIES)
def test_train_each_family_and_arch_on_2k_mnist(tmp_path, capsys, mnist_2k, family, arch):
    out = tmp_path / f"{family}_{arch}.pt"
    code = run(["train", "--family", family, "--arch", arch, "--latent", "4", "--data", "mnist",
                "--limit", "2000", "--epochs", "1", "--seed", "0", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.startswith(f"saved {out}: {family}/{arch} latent 4 on mnist") and "test_mse=" in captured.out
    assert "epoch 1/1" in captured.err and "val_loss=" in captured.err  # progress bar with live/val loss
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]

    raw = torch.load(out, weights_only=True)
    assert raw["card"]["aeserve.family"] == family and raw["card"]["aeserve.arch"] == arch

    model = checkpoint.load(out)
    card = model.card
    x_train, x_val, x_test = mnist_2k
    # the rebuilt model reproduces what the trained model measured at training time
    assert ev.reconstruction_metrics(model, x_test)["metrics.test_mse"] == pytest.approx(
        card.metrics["test_mse"], rel=1e-5)
    scores = ev.reconstruction_errors(model, x_val).double()
    assert float(scores.mean()) == pytest.approx(card.get_float("anomaly.mean"), rel=1e-5)
    assert ev.latent_stats(model, x_train)["latent.mean"] == pytest.approx(card.get_json("latent.mean"),
                                                                          rel=1e-4, abs=1e-6)
    assert card.get("train.samples") == "1800" and card.get("train.limit") == "2000"
    assert ("test_elbo" in card.metrics) == (family == "vae")
    with torch.no_grad():
        z = model.encoder(x_test[:8])
        x_hat = model.decoder(z[0] if family == "vae" else z)
    assert x_hat.shape == (8, 1, 28, 28)


def test_family_hparams_reach_the_card(tmp_path, capsys):
    out = tmp_path / "d.pt"
    code = run(["train", "--family", "dae", "--noise", "masking", "--noise-level", "0.3", "--hidden", "64,32",
                "--latent", "2", "--limit", "300", "--epochs", "1", "--classes", "3,5", "--quiet", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    card = checkpoint.read_card(out)
    assert card.hparams == {"hidden": [64, 32], "noise": "masking", "noise_level": 0.3}
    assert card.latent_dim == 2 and card.get("train.classes") == "[3,5]"
    assert "epoch" not in capsys.readouterr().err  # --quiet


def _npy(tmp_path, shape, dtype=np.float32):
    path = tmp_path / "data.npy"
    np.save(path, np.zeros(shape, dtype))
    return str(path)


@pytest.mark.parametrize("args, message", [
    (["--family", "gan"], "unknown family 'gan'; expected one of ae, contractive, dae, sparse, vae"),
    (["--family", "ae", "--arch", "rnn"], "unknown arch 'rnn'; expected one of mlp, conv"),
    (["--family", "ae", "--data", "cifar"], "unknown dataset 'cifar'"),
    (["--family", "ae", "--latent", "0"], "latent size must be an integer >= 1, got 0"),
    (["--family", "ae", "--epochs", "0"], "epochs must be an integer >= 1"),
    (["--family", "ae", "--classes", "42"], "no samples of classes [42]"),
    (["--family", "ae", "--classes", ","], "--classes is empty"),
    (["--family", "ae", "--classes", "one"], "mnist (train) does not name its classes, so class 'one' cannot be found"),
    (["--family", "ae", "--beta", "2"], "beta do not apply to family 'ae'"),
    (["--family", "dae", "--noise", "salt"], "unknown noise 'salt'"),
    (["--family", "ae", "--likelihood", "poisson"], "unknown likelihood 'poisson'"),
    (["--family", "ae", "--data", "NPY1D"], "expected (N, D) vectors"),
    (["--family", "ae", "--data", "NPYSTR"], "dtype"),
    (["--family", "ae", "--data", "NPYRANGE"], "float values range"),
    (["--family", "ae", "--arch", "conv", "--data", "NPYVEC"], "needs image input"),
])
def test_bad_input_exits_nonzero_with_one_line_and_no_file(tmp_path, capsys, args, message):
    data = {"NPY1D": lambda: _npy(tmp_path, (10,)),
            "NPYSTR": lambda: _npy(tmp_path, (10, 4), dtype="<U3"),
            "NPYRANGE": lambda: str(_save(tmp_path, np.full((10, 4), 7.5, np.float32))),
            "NPYVEC": lambda: _npy(tmp_path, (10, 4))}
    args = [data[a]() if a in data else a for a in args]
    out = tmp_path / "out" / "m.pt"
    code = run(["train", "--limit", "100", "--epochs", "1", "--quiet", "--out", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert "Traceback" not in err
    assert not out.parent.exists()


def _save(tmp_path, array):
    path = tmp_path / "range.npy"
    np.save(path, array)
    return path


def test_cuda_without_cuda(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = run(["train", "--family", "ae", "--device", "cuda", "--out", str(tmp_path / "m.pt")])
    assert code == 2 and "CUDA is not available" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_ctrl_c_during_training_leaves_no_checkpoint(tmp_path, capsys, monkeypatch):
    import aeserve.train as train_mod

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "_run_epoch", interrupted)
    code = run(["train", "--family", "ae", "--limit", "100", "--quiet", "--out", str(tmp_path / "m.pt")])
    assert code == 130 and capsys.readouterr().err.strip() in ("aborted", "interrupted")
    assert not list(tmp_path.iterdir())
