"""Training and ONNX export of the reference classifier (needs torch).

    from aeserve.classifier_train import build_classifier
    info = build_classifier("mnist", epochs=3, seed=0)   # -> export/classifiers/mnist_classifier.onnx
    info["test_accuracy"], info["path"]
    # CLI: aeserve build-classifier mnist fashion-mnist [--epochs 3] [--seed 0] [--limit N]

The network is a plain CNN (conv 16 -> conv 32 -> dense 128 -> 10), trained with Adam on
the dataset's train split; the exported graph is checked against torch before it is kept.
Inference (no torch) lives in ``aeserve.classifier``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .classifier import CLASSIFIER_DIR, FEATURES, INPUT_SHAPE, META_PREFIX, N_CLASSES, Classifier, classifier_dataset, classifier_filename
from .errors import ConfigError, InferenceError, InputError
from .fileio import write_bytes_atomic
from .progress import progress_bar
from .torch_state import restores_torch_state


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
        bar = progress_bar(range(0, len(xt), batch_size), desc=f"classifier epoch {epoch + 1}/{epochs}",
                           unit="batch", enabled=progress)
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
    if program is None:
        raise InferenceError("torch.onnx.export returned no program for the classifier")
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

    name = classifier_dataset(dataset)
    train = load_dataset(name, "train", limit=limit)
    test = load_dataset(name, "test")
    if train.y is None or test.y is None:
        raise ConfigError(f"{name} has no labels; the classifier trains on labelled data")
    net = train_classifier(train.x, train.y, epochs=epochs, seed=seed, progress=progress)
    acc = accuracy(net, test.x, test.y)
    path = Path(out) if out is not None else CLASSIFIER_DIR / classifier_filename(name)
    meta = {"dataset": name, "epochs": epochs, "seed": seed, "train_size": len(train),
            "test_accuracy": f"{acc:.4f}", "features": FEATURES,
            "command": f"aeserve build-classifier {name} --epochs {epochs} --seed {seed}"}
    export_classifier(net, path, meta)
    with torch.no_grad():
        ref = net(torch.from_numpy(test.x[:64]))[0].numpy()
    got = Classifier(path).predict(test.x[:64]).logits
    if not np.allclose(ref, got, atol=1e-4, rtol=1e-4):
        path.unlink()
        raise InferenceError(f"exported classifier disagrees with torch (max diff {np.abs(ref - got).max():.2e})")
    return {"path": str(path), "dataset": name, "test_accuracy": acc, "epochs": epochs, "seed": seed}
