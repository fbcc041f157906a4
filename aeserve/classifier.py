"""The reference digit/garment classifier that judges generated images: inference.

    from aeserve.classifier import Classifier, default_classifier_path
    clf = Classifier(default_classifier_path("mnist"))   # ONNX Runtime; no torch needed
    out = clf.predict(x)        # x (N, 1, 28, 28) in [0, 1] -> out.logits (N, 10), out.features (N, 128)
    out.probs, out.labels

    # building it (needs torch): aeserve.classifier_train, CLI verb
    aeserve build-classifier mnist fashion-mnist            # -> export/classifiers/*_classifier.onnx

The network is a plain CNN (conv 16 -> conv 32 -> dense 128 -> 10). The ONNX graph has
input ``x`` FP32 ``[-1, 1, 28, 28]`` and two outputs: ``logits`` ``[-1, 10]`` and
``features`` ``[-1, 128]`` (the penultimate activations, used for the Fréchet
distance between generated and real images). Its provenance (dataset, epochs, seed,
test accuracy) is stored in the ONNX ``metadata_props`` under ``aeserve.classifier.*``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .data import DATASETS
from .errors import ConfigError, InferenceError
from .images import as_batch
from .ort_session import cpu_session

INPUT_SHAPE = (1, 28, 28)
N_CLASSES = 10
FEATURES = 128
META_PREFIX = "aeserve.classifier."
CLASSIFIER_DIR = Path("export") / "classifiers"
_FILE_STEM = {"mnist": "mnist", "fashion-mnist": "fashion"}


def classifier_dataset(dataset: str) -> str:
    """A dataset name or alias (see :data:`aeserve.data.DATASETS`) -> the canonical name of a
    dataset with a reference classifier (``mnist``, ``fashion-mnist``); ConfigError otherwise."""
    name = DATASETS.get(dataset.strip().lower())
    if name not in _FILE_STEM:
        raise ConfigError(f"no classifier for dataset {dataset!r}; "
                          f"expected one of {', '.join(_FILE_STEM)} (or an alias of one)")
    return name


def classifier_filename(dataset: str) -> str:
    """``mnist_classifier.onnx`` / ``fashion_classifier.onnx`` for a dataset or alias; ConfigError otherwise."""
    return f"{_FILE_STEM[classifier_dataset(dataset)]}_classifier.onnx"


def default_classifier_path(dataset: str) -> Path:
    """``export/classifiers/{mnist,fashion}_classifier.onnx`` in the working directory if it
    exists there, else in the source tree next to the package. ConfigError for other datasets."""
    name = classifier_filename(dataset)
    here = Path.cwd() / CLASSIFIER_DIR / name
    if here.is_file():
        return here
    return Path(__file__).resolve().parent.parent / CLASSIFIER_DIR / name


@dataclass(frozen=True)
class Prediction:
    """Classifier outputs for N images: ``logits`` (N, 10) and ``features`` (N, 128)."""

    logits: np.ndarray
    features: np.ndarray

    @property
    def probs(self) -> np.ndarray:
        from .metrics import softmax

        return softmax(self.logits)

    @property
    def labels(self) -> np.ndarray:
        return self.logits.argmax(axis=1).astype(np.int64)


class Classifier:
    """An exported classifier run with ONNX Runtime (CPU; 2 threads, no spinning).

    ``Classifier(path)`` raises ConfigError if the file is missing or not a classifier
    graph; ``predict(x)`` raises InputError for images that are not ``(N, 1, 28, 28)``
    (or ``(N, 28, 28)``) finite values in [0, 1].
    """

    def __init__(self, path: str | os.PathLike[str], *, threads: int = 2):
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"classifier {self.path} does not exist; build it with "
                              "`aeserve build-classifier mnist fashion-mnist`")
        try:
            self._session = cpu_session(self.path, threads)
        except Exception as e:  # onnxruntime raises its own untyped errors
            raise ConfigError(f"{self.path} is not a loadable ONNX classifier: {e}") from e
        outputs = [o.name for o in self._session.get_outputs()]
        if outputs != ["logits", "features"]:
            raise ConfigError(f"{self.path} has outputs {outputs}; expected ['logits', 'features']")
        meta = self._session.get_modelmeta().custom_metadata_map
        self.metadata = {k[len(META_PREFIX):]: v for k, v in meta.items() if k.startswith(META_PREFIX)}

    @property
    def dataset(self) -> str | None:
        return self.metadata.get("dataset")

    def predict(self, x: Any, *, batch_size: int = 1024) -> Prediction:
        arr = as_batch(x, INPUT_SHAPE, what="classifier input")
        logits, feats = [], []
        for i in range(0, arr.shape[0], batch_size):
            try:
                lo, fe = self._session.run(None, {"x": arr[i:i + batch_size]})
            except Exception as e:
                raise InferenceError(f"classifier {self.path.name} failed on a batch: {e}") from e
            logits.append(lo)
            feats.append(fe)
        return Prediction(np.concatenate(logits), np.concatenate(feats))
