"""The encoder as a pretrained model: a classifier from an autoencoder and a few labels.

    from aeserve.finetune import finetune
    r = finetune("export/checkpoints/mnist_vae.pt", labels=100, mode="finetune")
    r.accuracy                 # test accuracy
    r.model                    # ClassifierModel: forward(x) -> probs (N, K)
    aeserve.export.export_classifier(r.model, "model_repository", "mnist_vae")  # mnist_vae_classifier

The feature vector is the encoder's code (``mu`` for a VAE, ``z`` otherwise), the same
``Client.features(x)`` returns. A linear head maps it to class probabilities. ``mode``:

- ``"probe"``: the encoder is frozen, only the head is trained on the labelled images;
- ``"finetune"``: encoder and head are trained together from the pretrained weights, on
  the labelled images (random shifts) and, when labels are few, on the rest of the
  training split without its labels: each unlabelled image's prediction on a lightly
  shifted copy becomes its target on a strongly perturbed copy (shift, erased square,
  noise) where that prediction is confident (FixMatch-style consistency, Sohn et al. 2020).

``labels`` images are drawn class-balanced (``labels // K`` per class) from the training
split with a seed. Raises ConfigError for a mode/step/label count out of range (fewer
labels than classes, more than the labelled data), DataError for data without labels,
CheckpointError for an unusable checkpoint.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .card import ModelCard
from .errors import ConfigError, DataError
from .labels import class_names, select_labels

MODES = ("probe", "finetune")
TASK = "classifier"
CONFIDENCE = 0.95
_AE_ONLY = ("metrics.", "anomaly.", "latent.", "restore.", "export.", "name")  # card keys of the autoencoder


class ClassifierModel(nn.Module):
    """Encoder + linear head: ``forward(x) -> probs`` (N, K). ``features(x)`` is the code the head reads.

    In a checkpoint the head sits in the ``decoder`` slot (``decoder`` is an alias of ``head``)."""

    def __init__(self, card: ModelCard, encoder: nn.Module, n_classes: int) -> None:
        super().__init__()
        self.card, self.encoder = card, encoder
        self.head = nn.Linear(card.latent_dim, n_classes)

    @property
    def decoder(self) -> nn.Module:
        return self.head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        out = self.encoder(x)
        return out[0] if isinstance(out, tuple) else out

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=1)


def build_classifier_model(card: ModelCard) -> ClassifierModel:
    """An untrained ClassifierModel for a classifier card (``task`` = classifier, ``class_names``)."""
    from .models import build_model

    classes = card.class_names
    if card.get("task") != TASK or classes is None or len(classes) < 2:
        raise ConfigError("not a classifier card: expected aeserve.task = classifier and a JSON list "
                          "aeserve.class_names of at least 2 class names")
    base = ModelCard(card.family, card.arch, card.input_shape, card.latent_dim, card.likelihood, card.dataset,
                     {"hparams": card.get("hparams") or "{}"})
    return ClassifierModel(card, build_model(base).encoder, len(classes))


@dataclass
class FinetuneResult:
    """The trained classifier (eval mode), its test accuracy (None without a test split)."""

    model: ClassifierModel
    accuracy: float | None
    history: list[dict[str, float]]


def _shift(x: torch.Tensor, gen: torch.Generator, pixels: int) -> torch.Tensor:
    """Each image translated by its own random integer offset in [-pixels, pixels] (zero fill)."""
    n, _, h, w = x.shape
    pad = F.pad(x, (pixels, pixels, pixels, pixels))
    dy = torch.randint(0, 2 * pixels + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pixels + 1, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None]).reshape(n, 1, h, 1).expand(n, x.shape[1], h, w + 2 * pixels)
    out = pad.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w)[None]).reshape(n, 1, 1, w).expand(n, x.shape[1], h, w)
    return out.gather(3, cols)


def _strong(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Shift by up to 3 px, erase one random 8x8 square, add noise (std 0.1), clip to [0, 1]."""
    x = _shift(x, gen, 3)
    n, _, h, w = x.shape
    top = torch.randint(0, h - 7, (n,), generator=gen)
    left = torch.randint(0, w - 7, (n,), generator=gen)
    r, c = torch.arange(h)[None], torch.arange(w)[None]
    box = (((r >= top[:, None]) & (r < top[:, None] + 8))[:, :, None]
           & ((c >= left[:, None]) & (c < left[:, None] + 8))[:, None, :])
    x = x.masked_fill(box[:, None], 0.0)
    return (x + 0.1 * torch.randn(x.shape, generator=gen)).clamp(0.0, 1.0)


def _bar(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", file=sys.stderr, disable=not enabled, leave=False)


def _train_probe(model: ClassifierModel, xl: torch.Tensor, yl: torch.Tensor, steps: int, progress: bool) -> None:
    with torch.no_grad():
        feats = torch.cat([model.features(xl[i:i + 1024]) for i in range(0, len(xl), 1024)])
    opt = torch.optim.Adam(model.head.parameters(), lr=1e-2, weight_decay=1e-4)
    with _bar(steps, "probe", progress) as bar:
        for _ in range(steps):
            loss = F.cross_entropy(model.head(feats), yl)
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.update(1)


def _train_finetune(model: ClassifierModel, xl: torch.Tensor, yl: torch.Tensor, xu: torch.Tensor | None,
                    steps: int, gen: torch.Generator, progress: bool, batch: int = 64) -> list[dict[str, float]]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    history: list[dict[str, float]] = []
    model.train()
    with _bar(steps, "finetune", progress) as bar:
        for step in range(steps):
            il = torch.randint(0, len(xl), (batch,), generator=gen)
            loss = F.cross_entropy(model.logits(_shift(xl[il], gen, 2)), yl[il])
            used = 0.0
            if xu is not None:
                xb = xu[torch.randint(0, len(xu), (2 * batch,), generator=gen)]
                with torch.no_grad():
                    conf, target = torch.softmax(model.logits(_shift(xb, gen, 1)), 1).max(1)
                keep = conf >= CONFIDENCE
                used = float(keep.float().mean())
                if keep.any():
                    loss = loss + F.cross_entropy(model.logits(_strong(xb[keep], gen)), target[keep]) * used
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            if step % 100 == 0 or step == steps - 1:
                history.append({"step": step, "loss": float(loss.detach()), "confident": used})
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}", confident=f"{used:.2f}", refresh=False)
    return history


def accuracy(model: ClassifierModel, x: np.ndarray, y: np.ndarray, batch: int = 1024) -> float:
    """Top-1 accuracy of ``model`` on images ``x`` with labels ``y``."""
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model.logits(torch.from_numpy(np.ascontiguousarray(x[i:i + batch]))).argmax(1)
                          for i in range(0, len(x), batch)])
    return float((pred.numpy() == y).mean())


def finetune(ckpt: Any, labels: int, *, data: Any = None, mode: str = "finetune", steps: int | None = None,
             unlabelled: int = 20000, seed: int = 0, progress: bool = True) -> FinetuneResult:
    """Train a classifier on ``labels`` labelled images from the encoder of checkpoint ``ckpt``
    (a path or a loaded ``Autoencoder``); see the module doc. ``data`` defaults to the
    checkpoint's dataset; its train split gives the labelled and (``finetune``, up to
    ``unlabelled``) unlabelled images, its test split the accuracy. ``steps``: optimiser
    steps (default 300 for probe, 1500 for finetune)."""
    from . import checkpoint
    from .data import load_dataset
    from .errors import SplitNotFoundError
    from .train import torch_threads

    if mode not in MODES:
        raise ConfigError(f"unknown finetune mode {mode!r}; expected one of {', '.join(MODES)}")
    steps = (300 if mode == "probe" else 1500) if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be a positive integer, got {steps!r}")
    if isinstance(labels, bool) or not isinstance(labels, (int, np.integer)) or labels < 2:
        raise ConfigError(f"labels must be an integer >= 2 (and >= the number of classes), got {labels!r}")
    ae = checkpoint.load(ckpt) if not isinstance(ckpt, nn.Module) else ckpt
    if ae.card.get("task") == TASK:
        raise ConfigError("the checkpoint is already a classifier; pass the autoencoder checkpoint it came from")
    torch.set_num_threads(torch_threads())
    train = load_dataset(data if data is not None else ae.card.dataset, "train")
    if tuple(train.input_shape) != tuple(ae.card.input_shape):
        raise DataError(f"data {train.name!r} has images {train.input_shape}; the encoder takes {ae.card.input_shape}")
    if train.y is None:
        select_labels(None, labels, 0, seed)   # raises: the data has no labels
    assert train.y is not None
    n_classes = int(train.y.max()) + 1
    idx = select_labels(train.y, int(labels), n_classes, seed)
    try:
        test = load_dataset(data if data is not None else ae.card.dataset, "test")
    except SplitNotFoundError:
        test = None
    names = list(train.class_names or class_names(train.name, n_classes))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        base = {k: v for k, v in ae.card.extra.items() if not k.startswith(_AE_ONLY)}
        card = ModelCard(ae.card.family, ae.card.arch, ae.card.input_shape, ae.card.latent_dim,
                         ae.card.likelihood, ae.card.dataset, base).with_extra(**{"task": TASK, "class_names": names, "finetune.mode": mode,
                                     "finetune.labels": int(labels), "finetune.steps": steps,
                                     "finetune.seed": seed, "finetune.data": train.name})
        model = ClassifierModel(card, copy.deepcopy(ae.encoder), n_classes)
        xl, yl = torch.from_numpy(train.x[idx]), torch.from_numpy(train.y[idx])
        _train_probe(model, xl, yl, 300, progress)
        history: list[dict[str, float]] = []
        if mode == "finetune":
            rest = np.setdiff1d(np.arange(len(train.x)), idx)
            pool = np.random.default_rng(seed).permutation(rest)[:unlabelled] if len(rest) else rest
            xu = torch.from_numpy(train.x[pool]) if len(pool) else None
            history = _train_finetune(model, xl, yl, xu, steps, gen, progress)
        model.eval()
        acc = accuracy(model, test.x, test.y) if test is not None and test.y is not None else None
    if acc is not None:
        model.card = model.card.with_extra(**{"metrics.test_accuracy": acc})
    return FinetuneResult(model, acc, history)

