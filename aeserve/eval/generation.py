"""Generation quality judged by the project's classifier (``aeserve.classifier``).

    from aeserve.eval.generation import generation_quality
    generation_quality(client, x_test, n=10000, seed=0, classifier=path, x_reference=x_train[:10000])

Scores ``client.generate(n, seed, temperature)``: the share of samples the classifier
labels with confidence >= 0.9, the entropy of the predicted-label histogram (nats;
ln 10 = 2.303 is uniform over ten classes), and the Fréchet distance between classifier
features (penultimate layer, 128-d) of the generated images and of the test images.
For scale it also reports the same numbers for real data: the test images' confident
share and the Fréchet distance between ``x_reference`` (e.g. training images) and the
test images, which is what a perfect generator would get with that many samples.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .. import metrics
from ..classifier import N_CLASSES, Classifier

CONFIDENCE = 0.9


def _summary(pred) -> dict[str, Any]:
    probs = pred.probs
    labels = pred.labels
    return {
        "confident_share": metrics.confident_share(probs, CONFIDENCE),
        "label_entropy": metrics.label_entropy(labels, N_CLASSES),
        "label_histogram": np.bincount(labels, minlength=N_CLASSES).tolist(),
    }


def generation_quality(client: Any, x_test: np.ndarray, *, n: int = 10000, seed: int = 0,
                       temperature: float = 1.0, classifier: str | os.PathLike[str],
                       y_test: np.ndarray | None = None, x_reference: np.ndarray | None = None) -> dict[str, Any]:
    """Classifier-based quality of ``n`` generated images (see module docstring).

    Raises ConfigError if the classifier file is missing, InputError on bad images."""
    clf = Classifier(classifier)
    # decoders end in a sigmoid; clip guards against fp16/rounding excursions outside [0, 1]
    generated = np.clip(client.generate(n, seed=seed, temperature=temperature), 0.0, 1.0)
    gen = clf.predict(generated)
    real = clf.predict(x_test)
    out: dict[str, Any] = {
        "n": int(n), "seed": int(seed), "temperature": float(temperature),
        "prior": "fitted" if getattr(client, "prior", None) is not None else "standard",
        **_summary(gen),
        "frechet_distance": metrics.frechet_distance(gen.features, real.features),
        "classifier": os.path.basename(str(classifier)),
        "real_test": {"n": len(x_test), "confident_share": metrics.confident_share(real.probs, CONFIDENCE),
                      "label_entropy": metrics.label_entropy(real.labels, N_CLASSES)},
    }
    if y_test is not None:
        out["real_test"]["classifier_accuracy"] = float(np.mean(real.labels == y_test))
    if x_reference is not None:
        ref = clf.predict(x_reference)
        out["real_test"]["frechet_distance_reference"] = metrics.frechet_distance(ref.features, real.features)
        out["real_test"]["reference_n"] = len(x_reference)
    return out
