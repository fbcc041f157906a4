"""Batch-job inputs: image folders, ``.npy``/``.npz`` shards and Parquet files, planned as chunks.

    from aeserve.distributed.sources import plan_input, load_chunk
    plan = plan_input("shards/", chunk_rows=1024)           # checks every shard, reads no pixels
    plan.rows, plan.sample_shape, len(plan.chunks)           # 10000 (1, 28, 28) 10
    ids, x = load_chunk(plan, plan.chunks[0])                # ["test.npy:0", ...], uint8/float (n, 1, 28, 28)

A path is one file or a directory searched recursively (sorted, hidden entries skipped):
``.npy`` (one array of samples), ``.npz`` (``x``, ``x_train``/``x_test``, or its only
array), ``.parquet`` (an image column: encoded image bytes, ``{"bytes": ...}`` structs as
Hugging Face datasets store them, or lists of pixel values), and image files (``.png``,
``.jpg``, ``.jpeg``, ``.bmp``, ``.gif``, ``.tif``, ``.tiff``, ``.webp``). Every row gets a stable
id that does not depend on chunking, workers or other files: ``<relative path>`` for an
image file, ``<relative path>:<index>`` for a row of an array shard or Parquet file
(``<path>[<key>]:<index>`` for an ``.npz`` array). Planning reads only headers and
metadata (npy/npz headers, Parquet footers, image headers) and raises DataError before
any work for: a path with no readable images, an unreadable shard, shapes that differ
across shards. Pixels are checked chunk by chunk when loaded (``check_pixels``).
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import check_int
from ..data.formats import check_pixels
from ..errors import ConfigError, DataError
from ..images import IMAGE_SUFFIXES

__all__ = ["IMAGE_SUFFIXES", "Shard", "Chunk", "Plan", "plan_input", "load_chunk"]

ARRAY_SUFFIXES = (".npy", ".npz", ".parquet")
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")  # as aeserve.images.load_images reads them
ACCEPTED = ("an image file or folder (" + ", ".join(IMAGE_SUFFIXES) + "), .npy/.npz shards, "
            "or Parquet files with an image column")


@dataclass(frozen=True)
class Shard:
    """One source of rows: an array (npy/npz key/Parquet column) or the list of image files."""

    kind: str                       # "npy" | "npz" | "parquet" | "images"
    path: str                       # file (or, for "images", the input root)
    name: str                       # relative name used in row ids
    rows: int
    sample_shape: tuple[int, ...] | None   # None: flat pixel lists, shaped by the model later
    key: str | None = None          # npz array name / Parquet column
    files: tuple[str, ...] = ()     # "images": relative file names, sorted


@dataclass(frozen=True)
class Chunk:
    """Rows ``start:stop`` of shard ``shard``; ``index`` numbers the chunk within the plan."""

    index: int
    shard: int
    start: int
    stop: int


@dataclass(frozen=True)
class Plan:
    """Every shard and chunk of one input; ``fingerprint`` changes when any file changes."""

    root: str
    shards: tuple[Shard, ...]
    chunks: tuple[Chunk, ...]
    sample_shape: tuple[int, ...] | None
    rows: int
    fingerprint: str


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200] or type(e).__name__


def _image_shape(path: Path) -> tuple[int, int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return (1 if im.mode in _GRAY_MODES else 3, im.height, im.width)
    except (OSError, UnidentifiedImageError, SyntaxError) as e:
        raise DataError(f"cannot read image {path}: {_one_line(e)}") from None


def _npy_header(f: Any, where: str) -> tuple[tuple[int, ...], np.dtype]:
    try:
        version = np.lib.format.read_magic(f)
        shape, _, dtype = np.lib.format._read_array_header(f, version)  # type: ignore[attr-defined]  # numpy's header reader
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"cannot read {where} as a numpy array: {_one_line(e)}") from None
    return tuple(shape), dtype


def _check_array(shape: tuple[int, ...], dtype: np.dtype, where: str) -> tuple[int, tuple[int, ...]]:
    if dtype.kind not in "uifb" or len(shape) < 2:
        raise DataError(f"{where}: array {shape} of {dtype} is not a batch of images; expected numeric "
                        "(N, H, W) or (N, C, H, W) pixels")
    sample = shape[1:]
    return shape[0], (1, *sample) if len(sample) == 2 else sample


def _npz_keys(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as z:
            keys = [n[:-4] for n in z.namelist() if n.endswith(".npy")]
    except (OSError, zipfile.BadZipFile) as e:
        raise DataError(f"cannot read {path} as .npz: {_one_line(e)}") from None
    candidates: tuple[list[str], ...] = (["x"], [k for k in ("x_train", "x_test") if k in keys])
    for wanted in candidates:
        if wanted and all(k in keys for k in wanted):
            return wanted
    if len(keys) == 1:
        return keys
    raise DataError(f"{path}: cannot tell which array holds the images (keys: {', '.join(sorted(keys)) or 'none'}); "
                    "expected x, x_train/x_test, or a single array")


def _parquet_shard(path: Path, name: str, column: str) -> Shard:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
    except (OSError, pa.ArrowException) as e:
        raise DataError(f"cannot read {path} as Parquet: {_one_line(e)}") from None
    if column not in schema.names:
        raise DataError(f"{path}: no column {column!r} (columns: {', '.join(schema.names)}); "
                        "pass the image column's name")
    rows, kind = pf.metadata.num_rows, schema.field(column).type
    shape: tuple[int, ...] | None = None
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_struct(kind):
        if rows:
            first = _decode_cells(pq.read_table(path, columns=[column]).slice(0, 1).column(0), None, str(path))
            shape = first.shape[1:]
    elif not (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)):
        raise DataError(f"{path}: column {column!r} has type {kind}; expected encoded image bytes, "
                        "{'bytes': ...} structs or lists of pixel values")
    return Shard("parquet", str(path), name, rows, shape, key=column)


def _array_shards(path: Path, name: str, column: str) -> list[Shard]:
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            with open(path, "rb") as f:
                shape, dtype = _npy_header(f, str(path))
        except OSError as e:
            raise DataError(f"cannot read {path}: {_one_line(e)}") from None
        rows, sample = _check_array(shape, dtype, str(path))
        return [Shard("npy", str(path), name, rows, sample)]
    if suffix == ".npz":
        out = []
        for key in _npz_keys(path):
            with zipfile.ZipFile(path) as z, z.open(f"{key}.npy") as f:
                shape, dtype = _npy_header(f, f"{path}[{key}]")
            rows, sample = _check_array(shape, dtype, f"{path}[{key}]")
            out.append(Shard("npz", str(path), f"{name}[{key}]", rows, sample, key=key))
        return out
    return [_parquet_shard(path, name, column)]


def _files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def plan_input(path: str | os.PathLike[str], *, chunk_rows: int = 1024, column: str = "image") -> Plan:
    """Plan a batch job over ``path`` (see module doc): shards, chunks of ``chunk_rows`` rows.

    Raises DataError (missing path, nothing readable, unreadable shard, shapes that differ
    across shards) and ConfigError (``chunk_rows`` < 1).
    """
    check_int(chunk_rows, "chunk_rows", minimum=1, error=ConfigError)
    root = Path(path)
    if not root.exists():
        raise DataError(f"input {root} does not exist; expected {ACCEPTED}")
    base = root.parent if root.is_file() else root
    files = _files(root)
    shards: list[Shard] = []
    images = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
    for f in files:
        if f.suffix.lower() in ARRAY_SUFFIXES:
            shards.extend(s for s in _array_shards(f, f.relative_to(base).as_posix(), column) if s.rows > 0)
    if images:
        shape = _image_shape(images[0])
        for f in images[1:]:
            if (other := _image_shape(f)) != shape:
                raise DataError(f"mixed shapes: {f} is (C, H, W) {other} but {images[0]} is {shape}; "
                                "every image of one job must have the same size and channels")
        shards.append(Shard("images", str(base), "", len(images), shape,
                            files=tuple(f.relative_to(base).as_posix() for f in images)))
    if not shards or sum(s.rows for s in shards) == 0:
        raise DataError(f"no readable images in {root}; expected {ACCEPTED}")
    shapes = {s.sample_shape for s in shards if s.sample_shape is not None}
    if len(shapes) > 1:
        a, b = [next(s for s in shards if s.sample_shape == shp) for shp in sorted(shapes)[:2]]
        raise DataError(f"mixed shapes across shards: {a.name or a.path} has samples {a.sample_shape} but "
                        f"{b.name or b.path} has {b.sample_shape}; every shard of one job must hold the same shape")
    chunks = [Chunk(0, i, s, min(s + chunk_rows, sh.rows)) for i, sh in enumerate(shards)
              for s in range(0, sh.rows, chunk_rows)]
    chunks = [Chunk(k, c.shard, c.start, c.stop) for k, c in enumerate(chunks)]
    h = hashlib.sha256(f"{chunk_rows}\0{column}\0".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(base).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return Plan(str(base), tuple(shards), tuple(chunks), next(iter(shapes), None),
                sum(s.rows for s in shards), h.hexdigest())


@functools.lru_cache(maxsize=2)
def _whole(kind: str, path: str, key: str | None) -> Any:
    """A compressed npz array or a Parquet column, read once per process and reused by its chunks."""
    if kind == "npz":
        with np.load(path, allow_pickle=False) as z:
            return z[key]
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=[key]).column(0)


def _decode_cells(col: Any, shape: tuple[int, ...] | None, where: str) -> np.ndarray:
    """Parquet cells -> uint8/float array: encoded images (bytes or {'bytes'} structs) or pixel lists."""
    import pyarrow as pa

    if pa.types.is_struct(col.type):
        col = col.combine_chunks().field("bytes") if hasattr(col, "combine_chunks") else col.field("bytes")
    if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
        from PIL import Image, UnidentifiedImageError

        out = []
        for i, cell in enumerate(col.to_pylist()):
            try:
                with Image.open(io.BytesIO(cell)) as im:
                    arr = np.asarray(im.convert("L" if im.mode in ("1", "L", "LA") else "RGB"))
            except (OSError, UnidentifiedImageError, TypeError) as e:
                raise DataError(f"{where}: row {i} of the chunk is not a readable image: {_one_line(e)}") from None
            out.append(arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0))
        try:
            return np.stack(out)
        except ValueError:
            raise DataError(f"{where}: images of different sizes in one file; expected one size") from None
    flat = np.asarray(col.combine_chunks().flatten() if hasattr(col, "combine_chunks") else col.flatten())
    n = len(col)
    per = flat.size // max(n, 1)
    if n * per != flat.size or (shape is not None and per != int(np.prod(shape))):
        raise DataError(f"{where}: pixel lists of {per} values do not fit samples of shape {shape}")
    return flat.reshape(n, *(shape or (per,)))


def load_chunk(plan: Plan, chunk: Chunk, sample_shape: tuple[int, ...] | None = None) -> tuple[list[str], np.ndarray]:
    """(row ids, pixels) of one chunk: uint8 or float ``(n, C, H, W)`` as stored, checked.

    ``sample_shape`` (the model's input shape) shapes Parquet pixel lists. Raises DataError.
    """
    sh = plan.shards[chunk.shard]
    a, b = chunk.start, chunk.stop
    where = sh.name or plan.root
    if sh.kind == "images":
        from ..images import load_images

        names = list(sh.files[a:b])
        x = load_images([Path(sh.path) / n for n in names], channels=(sh.sample_shape or (0,))[0] or None)
        return names, x
    if sh.kind == "npy":
        x = np.load(sh.path, mmap_mode="r", allow_pickle=False)[a:b]
    elif sh.kind == "npz":
        x = _whole("npz", sh.path, sh.key)[a:b]
    else:
        x = _decode_cells(_whole("parquet", sh.path, sh.key).slice(a, b - a), sample_shape or sh.sample_shape, where)
    x = np.ascontiguousarray(x)
    if x.ndim == 3:
        x = x[:, None]
    return [f"{sh.name}:{i}" for i in range(a, b)], check_pixels(x, f"{where} rows {a}:{b}")
