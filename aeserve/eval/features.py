"""The encoder as a pretrained model: test accuracy from few labels, against pixel baselines.

    from aeserve.eval.features import feature_accuracy
    feature_accuracy(client, train, test, label_counts=(100, 1000, None), ckpt="vae.pt")
    # {"100": {"probe": .., "finetune": .., "pixels_logreg": .., "pca_logreg": ..}, "1000": {..}, "all": {..},
    #  "served_classifier": {"accuracy": .., "labels": ..}}

For each number of labels (class-balanced, seeded; None = every training label):
``probe`` is logistic regression on the standardised ``client.features`` (frozen
encoder); ``pixels_logreg`` and ``pca_logreg`` the same classifier on raw pixels and on
the top-``pca_k`` principal components; ``finetune`` (only with ``ckpt``: needs torch)
trains encoder and head with ``aeserve.finetune``. The served ``<model>_classifier``,
if there is one, is measured through ``client.classify``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import AeserveError
from ..labels import select_labels

LABEL_COUNTS = (100, 1000, None)


def _logreg(f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray, y_test: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(f_train)
    clf = LogisticRegression(max_iter=300).fit(scaler.transform(f_train), y_train)
    return float((clf.predict(scaler.transform(f_test)) == y_test).mean())


def feature_accuracy(client: Any, train: Any, test: Any, *, label_counts: Sequence[int | None] = LABEL_COUNTS,
                     seed: int = 0, pca_k: int = 50, ckpt: Any = None,
                     finetune_steps: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Accuracy table (see module doc). ``train``/``test``: datasets with labels."""
    from sklearn.decomposition import PCA

    n_classes = int(train.y.max()) + 1
    f_train, f_test = client.features(train.x), client.features(test.x)
    flat_train, flat_test = train.x.reshape(len(train.x), -1), test.x.reshape(len(test.x), -1)
    pca = PCA(n_components=pca_k, svd_solver="randomized", random_state=seed).fit(flat_train)
    p_train, p_test = pca.transform(flat_train), pca.transform(flat_test)
    out: dict[str, Any] = {"feature_dim": int(f_train.shape[1]), "pca_k": pca_k, "n_test": len(test.x)}
    for count in label_counts:
        idx = np.arange(len(train.y)) if count is None else select_labels(train.y, count, n_classes, seed)
        row: dict[str, float | None] = {"probe": _logreg(f_train[idx], train.y[idx], f_test, test.y),
               "pixels_logreg": _logreg(flat_train[idx], train.y[idx], flat_test, test.y),
               "pca_logreg": _logreg(p_train[idx], train.y[idx], p_test, test.y)}
        if ckpt is not None:
            from ..finetune import finetune

            r = finetune(ckpt, len(idx), data=train.name, steps=finetune_steps, seed=seed, progress=progress)
            row["finetune"] = r.accuracy
        out["all" if count is None else str(count)] = row
    try:
        probs = client.classify(test.x)
        card = client.classifier_card()
        out["served_classifier"] = {"accuracy": float((probs.argmax(1) == test.y).mean()),
                                    "labels": card.get("finetune.labels"), "mode": card.get("finetune.mode")}
    except AeserveError as e:
        out["served_classifier"] = {"skipped": str(e)}
    return out
