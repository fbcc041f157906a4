"""Labelled subsets and class names (NumPy only), shared by ``finetune`` and the evaluation.

    idx = select_labels(y_train, 100, 10, seed=0)   # 10 indices per class, sorted
    CLASS_NAMES["fashion-mnist"][0]                  # "T-shirt/top"
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError, DataError

CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                      "Bag", "Ankle boot"],
}


def class_names(dataset: str, n_classes: int) -> list[str]:
    """Names of the classes 0..n_classes-1 of ``dataset`` (its label numbers if unknown)."""
    known = CLASS_NAMES.get(dataset, [])
    return [known[k] if k < len(known) else str(k) for k in range(n_classes)]


def select_labels(y: np.ndarray | None, labels: int, n_classes: int, seed: int) -> np.ndarray:
    """Sorted indices of ``labels`` labelled examples, ``labels // n_classes`` per class (one more
    for the first ``labels % n_classes`` classes), drawn with ``seed``.

    DataError when ``y`` is None (unlabelled data); ConfigError when ``labels`` is below the
    number of classes, above the labelled examples, or a class has too few examples."""
    if y is None:
        raise DataError("this needs labelled data; the data has no labels (a PNG folder needs one subfolder "
                        "per class, an .npz needs y_train/y_test)")
    if isinstance(labels, bool) or not isinstance(labels, (int, np.integer)) or labels < n_classes:
        raise ConfigError(f"labels must be an integer >= the number of classes ({n_classes}), got {labels!r}")
    if labels > len(y):
        raise ConfigError(f"labels {labels} is more than the {len(y)} labelled training examples")
    if labels == len(y):
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    per = [labels // n_classes + (1 if k < labels % n_classes else 0) for k in range(n_classes)]
    picks = []
    for k, m in enumerate(per):
        pool = np.flatnonzero(y == k)
        if len(pool) < m:
            raise ConfigError(f"labels {labels} needs {m} examples of class {k}; the data has {len(pool)}")
        picks.append(rng.choice(pool, m, replace=False))
    return np.sort(np.concatenate(picks))
