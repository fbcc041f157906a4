"""One-class anomaly detection protocol (Ruff et al. 2018) through the Client.

    from aeserve.eval.one_class import train_one_class, one_class_protocol
    train_one_class("mnist")                                  # 10 small models -> out/one_class/
    one_class_protocol("mnist", x_test, y_test)               # {"auroc_pct": {0: 99.6, ...}, "mean_auroc_pct": ...}

For each class c a model trained on class c only (``<stem>_oneclass<c>``, e.g.
``mnist_oneclass3``) scores every test image with ``client.anomaly_score`` (mean squared
reconstruction error, the card's method); images of the other nine classes are the
anomalies, and the AUROC (``sklearn.metrics.roc_auc_score`` via ``aeserve.metrics.auroc``)
is reported in percent per class and as the mean. The models live in an ordinary model
repository (default ``out/one_class``), so ``aeserve serve --repo out/one_class`` serves
them and ``url=`` measures that deployment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .. import metrics
from ..errors import ModelNotFoundError

ONE_CLASS_DIR = Path("out") / "one_class"
CLASSES = tuple(range(10))

#: the training recipe of the ten models: small and fast (about 20 s each on one core). Chosen on
#: MNIST classes 2 and 8 (the hardest) among AE/VAE/DAE, MLP/conv, latent 8/16/32 (mean AUROC
#: 89.3..92.9); see the report of the evaluation work for the table.
RECIPE: dict[str, Any] = {
    "family": "ae", "arch": "mlp", "latent_dim": 16, "epochs": 30, "batch_size": 64, "lr": 1e-3,
    "likelihood": "bernoulli", "hparams": {"hidden": [512, 128]},
}


def model_name(dataset: str, c: int) -> str:
    """``mnist_oneclass3``, ``fashion_oneclass3`` (dataset names are shortened to a stem)."""
    stem = "fashion" if "fashion" in dataset.lower() else dataset.lower().replace("-", "_")
    return f"{stem}_oneclass{int(c)}"


def train_one_class(dataset: str, repository: str | os.PathLike[str] = ONE_CLASS_DIR, *,
                    classes: Sequence[int] = CLASSES, recipe: dict[str, Any] | None = None, seed: int = 0,
                    progress: bool = True, log: Callable[[str], None] | None = None) -> list[str]:
    """Train and export one model per class into ``repository`` (each a new version).

    Uses ``aeserve.train.train`` on the training split filtered to the class and
    ``aeserve.export.export_model`` (kind cpu, max batch 1024). Returns the model names.
    Needs torch (the ``train`` extra)."""
    from ..export import export_model
    from ..progress import progress_bar
    from ..train import train

    r = {**RECIPE, **(recipe or {})}
    family, arch, latent = r.pop("family"), r.pop("arch"), r.pop("latent_dim")
    names = []
    bar = progress_bar(list(classes), desc=f"one-class {dataset}", unit="model", enabled=progress)
    for c in bar:
        res = train(family, arch, latent, dataset, classes=[int(c)], seed=seed, progress=False, **r)
        name = model_name(dataset, c)
        export_model(res.model, repository, name, max_batch=1024, kind="cpu")
        names.append(name)
        bar.set_postfix(model=name, val_loss=f"{res.history[-1]['val_loss']:.4g}")
        if log is not None and not progress:
            log(f"trained {name}: val loss {res.history[-1]['val_loss']:.4g}")
    return names


def one_class_protocol(dataset: str, x_test: np.ndarray, y_test: np.ndarray, *, url: str | None = None,
                       repository: str | os.PathLike[str] | None = ONE_CLASS_DIR,
                       classes: Sequence[int] = CLASSES, method: str = "mse") -> dict[str, Any]:
    """AUROC (percent) of each one-class model on the whole test set, and their mean.

    ``url`` None: embedded over ``repository``; else the Triton server at ``url``.
    Raises ModelNotFoundError naming the missing models (train them with ``train_one_class``).
    """
    from ..client import Client

    names = [model_name(dataset, c) for c in classes]
    with Client(url, repository=repository if url is None else None, model=None) as first:
        available = set(first.runtime.models())
        missing = [n for n in names if n not in available]
        if missing:
            raise ModelNotFoundError(
                f"one-class models {', '.join(missing)} are not in {first.runtime.target}; train them with "
                f"`aeserve eval --model ... --train` (or aeserve.eval.one_class.train_one_class)")
        per_class: dict[str, float] = {}
        provenance = None
        for c, name in zip(classes, names):
            client = first.with_model(name)
            try:
                scores = client.anomaly_score(x_test, method=method)
                provenance = provenance or {"family": client.card.family, "arch": client.card.arch,
                                            "latent_dim": client.card.latent_dim,
                                            "hparams": client.card.hparams,
                                            "epochs": client.card.train.get("epochs")}
            finally:
                client.close()
            per_class[str(c)] = 100.0 * metrics.auroc(scores, y_test != c)
    return {"auroc_pct": per_class, "mean_auroc_pct": float(np.mean(list(per_class.values()))),
            "method": method, "models": names, "recipe": provenance, "n": len(x_test)}
