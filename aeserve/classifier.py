"""The project's small digit/garment classifier, used to judge generated images.

    from aeserve.classifier import Classifier, default_classifier_path
    clf = Classifier(default_classifier_path("mnist"))   # ONNX Runtime; no torch needed
    out = clf.predict(x)        # x (N, 1, 28, 28) in [0, 1] -> out.logits (N, 10), out.features (N, 128)
    out.probs, out.labels

    # building (needs torch): train on the dataset's train split, export one ONNX file
    python -m aeserve.classifier mnist fashion-mnist        # -> export/classifiers/*_classifier.onnx

The network is a plain CNN (conv 16 -> conv 32 -> dense 128 -> 10). The ONNX graph has
input ``x`` FP32 ``[-1, 1, 28, 28]`` and two outputs: ``logits`` ``[-1, 10]`` and
``features`` ``[-1, 128]`` (the penultimate activations, used for the Fréchet
distance between generated and real images). Its provenance (dataset, epochs, seed,
test accuracy) is stored in the ONNX ``metadata_props`` under ``aeserve.classifier.*``.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .data import DATASETS
from .errors import ConfigError, InputError, InferenceError
from .fileio import write_bytes_atomic
from .torch_state import restores_torch_state

INPUT_SHAPE = (1, 28, 28)
N_CLASSES = 10
FEATURES = 128
META_PREFIX = "aeserve.classifier."
CLASSIFIER_DIR = Path("export") / "classifiers"
_FILE_STEM = {"mnist": "mnist", "fashion-mnist": "fashion"}


def _canonical(dataset: str) -> str:
    """A dataset name or alias (see :data:`aeserve.data.DATASETS`) -> its canonical name."""
    name = DATASETS.get(dataset.strip().lower())
    if name not in _FILE_STEM:
        raise ConfigError(f"no classifier for dataset {dataset!r}; "
                          f"expected one of {', '.join(_FILE_STEM)} (or an alias of one)")
    return name


def default_classifier_path(dataset: str) -> Path:
    """``export/classifiers/{mnist,fashion}_classifier.onnx`` in the working directory if it
    exists there, else in the source tree next to the package. ConfigError for other datasets."""
    name = f"{_FILE_STEM[_canonical(dataset)]}_classifier.onnx"
    here = Path.cwd() / CLASSIFIER_DIR / name
    if here.is_file():
        return here
    return Path(__file__).resolve().parent.parent / CLASSIFIER_DIR / name


# ---- inference (ONNX Runtime) ------------------------------------------------------------
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
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"classifier {self.path} does not exist; build it with "
                              "`python -m aeserve.classifier mnist fashion-mnist`")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own untyped errors
            raise ConfigError(f"{self.path} is not a loadable ONNX classifier: {e}") from None
        outputs = [o.name for o in self._session.get_outputs()]
        if outputs != ["logits", "features"]:
            raise ConfigError(f"{self.path} has outputs {outputs}; expected ['logits', 'features']")
        meta = self._session.get_modelmeta().custom_metadata_map
        self.metadata = {k[len(META_PREFIX):]: v for k, v in meta.items() if k.startswith(META_PREFIX)}

    @property
    def dataset(self) -> str | None:
        return self.metadata.get("dataset")

    def predict(self, x: Any, *, batch_size: int = 1024) -> Prediction:
        arr = np.asarray(x)
        if arr.ndim == 3:
            arr = arr[:, None]
        if arr.ndim != 4 or arr.shape[1:] != INPUT_SHAPE or arr.shape[0] == 0:
            raise InputError(f"classifier input must be (N, 1, 28, 28) or (N, 28, 28) with N >= 1, got {np.shape(x)}")
        if arr.dtype == np.uint8:
            arr = arr.astype(np.float32) / 255.0
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if not np.all(np.isfinite(arr)) or arr.min() < 0.0 or arr.max() > 1.0:
            raise InputError("classifier input must be finite values in [0, 1]")
        logits, feats = [], []
        for i in range(0, arr.shape[0], batch_size):
            try:
                lo, fe = self._session.run(None, {"x": arr[i:i + batch_size]})
            except Exception as e:
                raise InferenceError(f"classifier {self.path.name} failed on a batch: {e}") from None
            logits.append(lo)
            feats.append(fe)
        return Prediction(np.concatenate(logits), np.concatenate(feats))


# ---- training and export (torch) ---------------------------------------------------------
def build_network():
    """The torch module: ``forward(x) -> (logits, features)``."""
    import torch
    from torch import nn

    class ClassifierNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Flatten(), nn.Linear(32 * 7 * 7, FEATURES), nn.ReLU(),
            )
            self.head = nn.Linear(FEATURES, N_CLASSES)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            features = self.body(x)
            return self.head(features), features

    return ClassifierNet()


@restores_torch_state
def train_classifier(x: np.ndarray, y: np.ndarray, *, epochs: int = 3, batch_size: int = 128, lr: float = 1e-3,
                     seed: int = 0, progress: bool = True):
    """Train the classifier on images ``x`` (N, 1, 28, 28) in [0, 1] and int labels ``y`` in [0, 10).

    Adam, cross-entropy, light random shifts (±2 px) as augmentation; deterministic for a
    seed on CPU; the caller's torch thread count and global RNG are restored afterwards.
    Returns the torch module in eval mode. InputError on bad shapes/labels."""
    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    if x.ndim != 4 or x.shape[1:] != INPUT_SHAPE or y.shape != (x.shape[0],):
        raise InputError(f"expected x (N, 1, 28, 28) and y (N,), got {x.shape} and {y.shape}")
    if y.min() < 0 or y.max() >= N_CLASSES:
        raise InputError(f"labels must be in [0, {N_CLASSES}), got [{y.min()}, {y.max()}]")
    if epochs < 1:
        raise InputError(f"epochs must be >= 1, got {epochs}")
    from .train import torch_threads  # oversubscribed threads on a busy machine are ~10x slower

    torch.set_num_threads(torch_threads())
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = build_network()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr * 3, total_steps=epochs * -(-len(x) // batch_size))
    xt, yt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(y.astype(np.int64))
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(xt), generator=gen)
        bar = tqdm(range(0, len(xt), batch_size), desc=f"classifier epoch {epoch + 1}/{epochs}",
                   disable=not progress, leave=False)
        for i in bar:
            idx = order[i:i + batch_size]
            xb = xt[idx]
            dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=gen))
            xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
            loss = F.cross_entropy(net(xb)[0], yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    return net.eval()


def accuracy(net, x: np.ndarray, y: np.ndarray, batch_size: int = 1024) -> float:
    """Top-1 accuracy of a torch classifier on ``x``, ``y``."""
    import torch

    with torch.no_grad():
        pred = torch.cat([net(torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size], np.float32)))[0].argmax(1)
                          for i in range(0, len(x), batch_size)])
    return float((pred.numpy() == y).mean())


def export_classifier(net, path: str | os.PathLike[str], metadata: dict[str, Any]) -> Path:
    """Write ``net`` as one self-contained ONNX file (symbolic batch) with ``metadata`` in
    ``metadata_props`` (keys prefixed ``aeserve.classifier.``). Atomic: temp file + rename."""
    import onnx
    import torch

    batch = torch.export.Dim("batch", min=1, max=65536)
    example = torch.rand(2, *INPUT_SHAPE, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.export internals (LeafSpec deprecation)
        program = torch.onnx.export(net, (example,), dynamo=True, external_data=False, input_names=["x"],
                                    output_names=["logits", "features"], dynamic_shapes={"x": {0: batch}},
                                    verbose=False)
    model = program.model_proto
    for key, value in sorted(metadata.items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = META_PREFIX + key, str(value)
    onnx.checker.check_model(model)
    return write_bytes_atomic(path, model.SerializeToString())


def build_classifier(dataset: str, out: str | os.PathLike[str] | None = None, *, epochs: int = 3,
                     seed: int = 0, limit: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Train on ``dataset``'s train split, measure test accuracy, export the ONNX file.

    Returns ``{"path", "dataset", "test_accuracy", "epochs", "seed"}``. Checks that the
    ONNX graph reproduces torch's logits before writing. ConfigError for unknown datasets."""
    import torch

    from .data import load_dataset

    name = _canonical(dataset)
    train = load_dataset(name, "train", limit=limit)
    test = load_dataset(name, "test")
    net = train_classifier(train.x, train.y, epochs=epochs, seed=seed, progress=progress)
    acc = accuracy(net, test.x, test.y)
    path = Path(out) if out is not None else CLASSIFIER_DIR / f"{_FILE_STEM[name]}_classifier.onnx"
    meta = {"dataset": name, "epochs": epochs, "seed": seed, "train_size": len(train),
            "test_accuracy": f"{acc:.4f}", "features": FEATURES,
            "command": f"python -m aeserve.classifier {name} --epochs {epochs} --seed {seed}"}
    export_classifier(net, path, meta)
    with torch.no_grad():
        ref = net(torch.from_numpy(test.x[:64]))[0].numpy()
    got = Classifier(path).predict(test.x[:64]).logits
    if not np.allclose(ref, got, atol=1e-4, rtol=1e-4):
        path.unlink()
        raise InferenceError(f"exported classifier disagrees with torch (max diff {np.abs(ref - got).max():.2e})")
    return {"path": str(path), "dataset": name, "test_accuracy": acc, "epochs": epochs, "seed": seed}


def main(argv: list[str] | None = None) -> int:
    """``python -m aeserve.classifier DATASET... [--epochs N] [--seed S]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m aeserve.classifier", description=main.__doc__)
    parser.add_argument("datasets", nargs="+", help="mnist and/or fashion-mnist")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    for ds in args.datasets:
        info = build_classifier(ds, epochs=args.epochs, seed=args.seed, limit=args.limit)
        print(f"{info['dataset']}: test accuracy {info['test_accuracy']:.4f} -> {info['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
