"""Readers for the on-disk dataset formats aeserve accepts (numpy only, PIL on demand).

    from aeserve.data.formats import read_path, to_unit_float
    parts = read_path(Path("digits.npz"))     # {"train": Part(x, y), "test": Part(x, y)}
    x01 = to_unit_float(parts["train"].x)     # float32 in [0, 1]

Every reader returns a dict of :class:`Part` keyed by split: ``"train"`` and/or
``"test"`` when the source has splits, or ``"all"`` alone when it is one array.
Samples come back in their stored dtype (uint8 bytes stay uint8, so filtering and
``limit`` are cheap) but already checked by :func:`check_pixels` and shaped
``(N, D)`` vectors or ``(N, C, H, W)`` images; labels are int64 ``(N,)`` or None.
Every problem with a file raises :class:`~aeserve.errors.DataError` naming what was
found and what was expected.

Pixel convention: uint8 (and any integer dtype) holds bytes 0..255 and is divided
by 255; bool is 0/1; floats must already lie in [0, 1]. A CSV has no dtype, so a
CSV whose values are all integers in 0..255 with some value above 1 is read as bytes.
"""

from __future__ import annotations

import gzip
import re
import struct
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import DataError
from ..images import read_images

__all__ = [
    "Part",
    "Parts",
    "FORMATS",
    "IDX_NAME",
    "check_pixels",
    "to_unit_float",
    "as_samples",
    "as_labels",
    "read_idx",
    "read_idx_dir",
    "read_path",
    "read_png_folder",
    "class_labels",
]

FORMATS = (
    "an IDX directory (train-*/t10k-* files, raw or .gz) or IDX file, a .npy, .npz or .csv file, "
    "a .png, or a folder of PNGs (optionally one subfolder per class: data/cat, data/dog or data/0, data/1)"
)
# train-images-idx3-ubyte, t10k-labels-idx1-ubyte.gz, train-images.idx3-ubyte ...
IDX_NAME = re.compile(r"^(train|t10k|test)[-_.](images|labels)[-_.]idx\d[-_.]ubyte(\.gz)?$", re.I)
_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_SPLIT_OF = {"train": "train", "t10k": "test", "test": "test"}
_PIXELS = "uint8 bytes 0..255 or floats in [0, 1]"


class Part(NamedTuple):
    """One split of a source: samples ``x`` (stored dtype), int64 labels or None, and the
    class names (``names[label]``) when the source names its classes, else None."""

    x: np.ndarray
    y: np.ndarray | None
    names: tuple[str, ...] | None = None


Parts = dict[str, Part]


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def check_pixels(x: np.ndarray, where: str) -> np.ndarray:
    """Check ``x`` holds pixels this package understands; return it unchanged.

    ``check_pixels(np.zeros((2, 4), np.uint8), "a.npy")`` passes; strings, complex,
    object, NaN/Inf, negative or > 255 integers and floats outside [0, 1] raise DataError.
    """
    kind = x.dtype.kind
    if kind not in "biuf":
        raise DataError(f"{where}: dtype {x.dtype} is not supported; expected {_PIXELS}")
    if x.size == 0 or kind in "b" or x.dtype == np.uint8:
        return x
    if kind == "f" and not np.isfinite(x).all():
        raise DataError(f"{where}: contains NaN or Inf; expected {_PIXELS}")
    lo, hi = x.min(), x.max()
    if kind in "iu" and (lo < 0 or hi > 255):
        raise DataError(f"{where}: integer values range [{lo}, {hi}]; expected {_PIXELS}")
    if kind == "f" and (lo < 0 or hi > 1):
        raise DataError(f"{where}: float values range [{lo:.6g}, {hi:.6g}]; expected {_PIXELS}")
    return x


def to_unit_float(x: np.ndarray) -> np.ndarray:
    """Convert checked pixels to a new float32 array in [0, 1] (integers / 255, 255 -> 1.0).

    ``to_unit_float(np.array([0, 255], np.uint8))`` -> ``array([0., 1.], dtype=float32)``.
    """
    if x.dtype.kind in "iu":
        return x.astype(np.float32) / np.float32(255)
    return x.astype(np.float32)  # bool or already-checked float; always a fresh copy


def as_samples(x: np.ndarray, where: str) -> np.ndarray:
    """Shape ``x`` as ``(N, D)`` vectors or ``(N, C, H, W)`` images and check its pixels.

    ``(N, H, W)`` gains a channel axis; a 4-D array whose last axis is 1, 3 or 4 while
    its second is not is taken as channel-last and transposed. Raises DataError for any
    other rank, for no samples, and via :func:`check_pixels`.
    """
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[1] not in (1, 3, 4) and x.shape[3] in (1, 3, 4):
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    elif x.ndim not in (2, 4):
        raise DataError(
            f"{where}: array of shape {x.shape} has {x.ndim} dimension(s); expected (N, D) vectors, "
            "(N, H, W) or (N, C, H, W) images"
        )
    if x.shape[0] == 0 or x.size == 0:
        raise DataError(f"{where}: holds no samples (shape {x.shape}); expected at least one")
    return check_pixels(x, where)


def as_labels(y: np.ndarray, n: int, where: str) -> np.ndarray:
    """Check labels are ``n`` integers (integral floats accepted); return them as int64 ``(n,)``."""
    if y.ndim != 1 or y.shape[0] != n:
        raise DataError(f"{where}: labels have shape {y.shape}; expected ({n},) to match the samples")
    if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.rint(y)).all():
        return y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise DataError(f"{where}: labels have dtype {y.dtype}; expected integer class labels")
    return y.astype(np.int64)


def _read_bytes(path: Path) -> bytes:
    """File contents, gunzipped when the file starts with the gzip magic."""
    try:
        data = path.read_bytes()
        return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read {path}: {_one_line(exc)}") from exc


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (raw or gzipped) into a native-endian ndarray of its stored shape.

    ``read_idx(Path("train-labels-idx1-ubyte.gz"))`` -> uint8 ``(60000,)``. Raises
    DataError for a bad magic number, an unknown type code or a size that does not match.
    """
    data = _read_bytes(path)
    if len(data) < 4 or data[0] or data[1] or data[2] not in _IDX_DTYPES or data[3] == 0:
        raise DataError(
            f"{path} is not an IDX file: magic bytes {data[:4].hex(' ') or '(empty)'}; "
            "expected 00 00 <type 08|09|0b|0c|0d|0e> <ndim >= 1>"
        )
    ndim, dtype = data[3], np.dtype(_IDX_DTYPES[data[2]])
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: IDX header truncated ({len(data)} bytes); expected {header} header bytes")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    count = int(np.prod(dims, dtype=np.int64))
    if len(data) - header != count * dtype.itemsize:
        raise DataError(
            f"{path}: IDX body has {len(data) - header} bytes; expected {count * dtype.itemsize} "
            f"for shape {dims} of {dtype.name}"
        )
    arr = np.frombuffer(data, dtype, count=count, offset=header).reshape(dims)
    return arr if dtype.isnative else arr.astype(dtype.newbyteorder("="))


def _idx_samples(path: Path) -> np.ndarray:
    x = read_idx(path)
    if x.ndim == 1:
        raise DataError(f"{path} holds a 1-D IDX array {x.shape} (labels?); expected images or vectors")
    return as_samples(x, str(path))


def _read_idx_file(path: Path) -> Part:
    """A single IDX images file; its labels are picked up when the sibling labels file exists."""
    x = _idx_samples(path)
    match = IDX_NAME.match(path.name)
    if not match or match.group(2).lower() != "images":
        return Part(x, None)
    labels = idx_files(path.parent).get((_SPLIT_OF[match.group(1).lower()], "labels"))
    return Part(x, None if labels is None else as_labels(read_idx(labels), x.shape[0], str(labels)))


def idx_files(directory: Path) -> dict[tuple[str, str], Path]:
    """Map ``(split, "images"|"labels")`` to the IDX file for it in ``directory`` (raw preferred)."""
    found: dict[tuple[str, str], Path] = {}
    for path in sorted(directory.iterdir(), key=lambda p: (p.name.lower().endswith(".gz"), p.name)):
        match = IDX_NAME.match(path.name)
        if match and path.is_file():
            found.setdefault((_SPLIT_OF[match.group(1).lower()], match.group(2).lower()), path)
    return found


def read_idx_dir(directory: Path) -> Parts:
    """Read ``train-*``/``t10k-*`` IDX image files (labels optional) from ``directory``.

    Returns ``{"train": Part, "test": Part}`` for whichever splits have an images file.
    Raises DataError when there is none, or when labels do not match their images.
    """
    files = idx_files(directory)
    parts: Parts = {}
    for split in ("train", "test"):
        if (split, "images") not in files:
            continue
        images = files[split, "images"]
        x = _idx_samples(images)
        y = None
        if (split, "labels") in files:
            y = as_labels(read_idx(files[split, "labels"]), x.shape[0], str(files[split, "labels"]))
        parts[split] = Part(x, y)
    if not parts:
        raise DataError(
            f"{directory}: no IDX images file found; expected e.g. train-images-idx3-ubyte[.gz] "
            "and t10k-images-idx3-ubyte[.gz] (labels files optional)"
        )
    return parts


def _read_npy(path: Path) -> Parts:
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"cannot read {path} as .npy: {_one_line(exc)}; expected a numeric array") from exc
    return {"all": Part(as_samples(x, str(path)), None)}


def _read_npz(path: Path) -> Parts:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {key: z[key] for key in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {path} as .npz: {_one_line(exc)}; expected numeric arrays") from exc

    def part(xk: str, yk: str) -> Part:
        x = as_samples(arrays[xk], f"{path}[{xk}]")
        y = as_labels(arrays[yk], x.shape[0], f"{path}[{yk}]") if yk in arrays else None
        return Part(x, y)

    if "x_train" in arrays or "x_test" in arrays:
        return {s: part(f"x_{s}", f"y_{s}") for s in ("train", "test") if f"x_{s}" in arrays}
    if "x" in arrays:
        return {"all": part("x", "y")}
    if len(arrays) == 1:
        return {"all": part(next(iter(arrays)), "")}
    raise DataError(
        f"{path}: cannot tell which array holds the samples (keys: {', '.join(sorted(arrays)) or 'none'}); "
        "expected x_train/y_train/x_test/y_test, x/y, or a single array"
    )


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_csv(path: Path) -> Parts:
    expected = "N rows of D comma-separated numbers, optional header row, optional 'label' column"
    try:
        with path.open(newline="") as fh:
            first = fh.readline()
        cells = [c.strip().strip("\"'").strip() for c in first.split(",")]
        header = not all(_is_number(c) for c in cells)
        with warnings.catch_warnings():  # an empty file is reported below, not warned about
            warnings.simplefilter("ignore", UserWarning)
            data = np.loadtxt(path, delimiter=",", skiprows=int(header), dtype=np.float64, ndmin=2)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path} as CSV: {_one_line(exc)}; expected {expected}") from exc
    if data.shape[0] == 0:
        raise DataError(f"{path}: no data rows; expected {expected}")
    y = None
    names = [c.lower() for c in cells] if header else []
    if "label" in names:
        j = names.index("label")
        y = as_labels(data[:, j], data.shape[0], f"{path} column 'label'")
        data = np.delete(data, j, axis=1)
    if data.shape[1] == 0:
        raise DataError(f"{path}: no feature columns besides 'label'; expected {expected}")
    finite = np.isfinite(data).all()
    if finite and data.max() > 1 and data.min() >= 0 and data.max() <= 255 and (data == np.rint(data)).all():
        data = data.astype(np.uint8)  # integer CSV = pixel bytes (e.g. Kaggle's mnist_train.csv)
    return {"all": Part(as_samples(data, str(path)), y)}


def _pngs(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix.lower() == ".png" and p.is_file())


def class_labels(names: list[str]) -> tuple[dict[str, int], tuple[str, ...] | None]:
    """Labels for class folder names: ``(name -> label, class names or None)``.

    Folders all named by integers keep those integers as labels (no names); otherwise,
    as torchvision's ImageFolder does, the names are sorted and numbered from 0:
    ``class_labels(["dog", "cat"])`` -> ``({"cat": 0, "dog": 1}, ("cat", "dog"))``.
    """
    if all(re.fullmatch(r"-?\d+", n) for n in names):
        return {n: int(n) for n in names}, None
    ordered = tuple(sorted(names))
    return {n: i for i, n in enumerate(ordered)}, ordered


def read_png_folder(directory: Path) -> Parts:
    """Read ``directory/*.png`` (no labels) or ``directory/<class>/*.png`` (labelled).

    Class folders named by integers (``0/``, ``1/``) give those labels; folders named by
    words (``cat/``, ``dog/``) are sorted and numbered 0, 1, ... and their names kept in
    ``Part.names``. Files load in sorted order, class by class in label order. Raises
    DataError for a mix of loose PNGs and class folders, or no PNGs at all.
    """
    loose = _pngs(directory)
    class_dirs = {d: _pngs(d) for d in sorted(directory.iterdir()) if d.is_dir()}
    class_dirs = {d: files for d, files in class_dirs.items() if files}
    if loose and class_dirs:
        raise DataError(
            f"{directory}: has both loose PNGs and class subfolders; expected one layout "
            "(all PNGs at the top, or one subfolder per class)"
        )
    if loose:
        return {"all": Part(as_samples(read_images(loose), str(directory)), None)}
    if not class_dirs:
        raise DataError(f"{directory}: no PNG images or IDX files found; expected {FORMATS}")
    label_of, names = class_labels([d.name for d in class_dirs])
    ordered = sorted(class_dirs, key=lambda d: label_of[d.name])
    files = [f for d in ordered for f in class_dirs[d]]
    y = np.concatenate([np.full(len(class_dirs[d]), label_of[d.name], np.int64) for d in ordered])
    return {"all": Part(as_samples(read_images(files), str(directory)), y, names)}


def read_path(path: Path) -> Parts:
    """Read any supported file or directory (see :data:`FORMATS`); the path must exist."""
    if path.is_dir():
        try:
            has_idx = bool(idx_files(path))
        except OSError as exc:
            raise DataError(f"cannot list {path}: {_one_line(exc)}") from exc
        return read_idx_dir(path) if has_idx else read_png_folder(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _read_npy(path)
    if suffix == ".npz":
        return _read_npz(path)
    if suffix == ".csv":
        return _read_csv(path)
    if suffix == ".png":
        return {"all": Part(as_samples(read_images([path]), str(path)), None)}
    if suffix in ("", ".gz") or "ubyte" in path.name.lower() or "idx" in path.name.lower():
        return {"all": _read_idx_file(path)}
    raise DataError(f"unsupported dataset file {path} (suffix {suffix!r}); expected {FORMATS}")
