"""Screen a one-class recipe on one class: train on the class's training images, score the test set.

    python benchmarks/one_class_screen.py mnist 8 --family vae          # one JSON line
    python benchmarks/one_class_screen.py fashion-mnist 6 --family ae --latent 32 --epochs 60
    python benchmarks/one_class_screen.py mnist 8 --members 3       # + a seed ensemble of 3 (seeds 0, 1, 2)

Trains like ``aeserve.eval.one_class.train_one_class`` (the recipe's defaults, overridden by
the options; in memory, nothing exported), runs the torch model on the whole test split and
on the class's training images, and prints the AUROC (percent; the other classes are the
anomalies) of the reconstruction MSE, of the code's negative log-density under the mixture
``aeserve.prior_fit.fit_prior`` fits to the training codes, and of the ``combined`` score
(both standardised with the held-out training images, as ``fit_model_prior`` calibrates it).
``--members M`` trains M models (seeds 0..M-1) and adds the AUROC of the mean of their
``combined`` scores (``ensemble``, for the first 2, 3, ..., M members) and each member's ``combined`` AUROC (``members``).
Used to choose the recipe on the hardest classes before running the full protocol
(``aeserve eval --one-class ... --train``); run it with one thread (OMP_NUM_THREADS=1).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from aeserve.data import load_dataset
from aeserve.eval.one_class import RECIPE
from aeserve.metrics import auroc
from aeserve.prior import component_bytes
from aeserve.prior_fit import _split, fit_prior
from aeserve.train import train


def _codes(model, x: np.ndarray, batch: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    zs, mse = [], []
    with torch.no_grad():
        for s in range(0, len(x), batch):
            xb = torch.as_tensor(x[s:s + batch])
            out = model.encoder(xb)
            z = out[0] if isinstance(out, tuple) else out   # VAE: the posterior mean
            zs.append(z.numpy())
            err = (xb.reshape(len(xb), -1).double() - model.decoder(z).reshape(len(xb), -1).double()) ** 2
            mse.append(err.mean(1).numpy())
    return np.concatenate(zs).astype(np.float64), np.concatenate(mse)


def _scores(model, x_test: np.ndarray, x_normal: np.ndarray, latent: int,
            max_components: int | None) -> tuple[dict[str, np.ndarray], int]:
    """Test-set scores (mse, density, combined) of one model, and its mixture's component count."""
    z, mse = _codes(model, x_test)
    z_train, mse_train = _codes(model, x_normal)
    budget = {} if max_components is None else {"budget_bytes": max_components * component_bytes(latent)}
    prior, _ = fit_prior(z_train, None, seed=0, **budget)
    _, held = _split(len(z_train), 0)
    nll, nll_held, log_mse_held = -prior.log_density(z), -prior.log_density(z_train[held]), np.log(mse_train[held])
    combined = ((nll - nll_held.mean()) / nll_held.std()
                + (np.log(mse) - log_mse_held.mean()) / log_mse_held.std())
    return {"mse": mse, "density": nll, "combined": combined}, prior.n_components


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("cls", type=int)
    ap.add_argument("--family", default=RECIPE["family"])
    ap.add_argument("--arch", default=RECIPE["arch"])
    ap.add_argument("--latent", type=int, default=RECIPE["latent_dim"])
    ap.add_argument("--epochs", type=int, default=RECIPE["epochs"])
    ap.add_argument("--hparams", default=None, help="JSON [default: the recipe's for mlp, none for conv]")
    ap.add_argument("--max-components", type=int, default=None,
                    help="cap on the mixture's components [default: what fit_prior's card budget allows]")
    ap.add_argument("--members", type=int, default=1, help="models trained with seeds 0..M-1 [default: 1]")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    hp = json.loads(a.hparams) if a.hparams else (RECIPE["hparams"] if a.arch == "mlp" else {})
    test, normal = load_dataset(a.dataset, "test"), load_dataset(a.dataset, "train", classes=[a.cls])
    y = test.y != a.cls
    rows, combined = [], []
    for seed in range(a.members):
        started = time.perf_counter()
        res = train(a.family, a.arch, a.latent, a.dataset, classes=[a.cls], seed=seed, progress=False,
                    epochs=a.epochs, batch_size=RECIPE["batch_size"], lr=RECIPE["lr"],
                    likelihood=RECIPE["likelihood"], hparams=hp)
        seconds = time.perf_counter() - started
        scores, components = _scores(res.model.eval(), test.x, normal.x, a.latent, a.max_components)
        combined.append(scores["combined"])
        rows.append({"train_seconds": round(seconds, 1), "components": components,
                     **{k: round(100 * auroc(v, y), 2) for k, v in scores.items()}})
    row = {"dataset": a.dataset, "class": a.cls, "family": a.family, "arch": a.arch, "latent": a.latent,
           "epochs": a.epochs, "hparams": hp, **rows[0]}
    if a.members > 1:
        row["members"] = [r["combined"] for r in rows]
        row["ensemble"] = {m: round(100 * auroc(np.mean(combined[:m], axis=0), y), 2)
                           for m in range(2, a.members + 1)}
    print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
