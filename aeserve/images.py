"""Image batches in and out: validation, conversion, PNG grids (numpy + Pillow, no torch).

    from aeserve.images import as_batch, save_grid, load_images
    x = as_batch(uint8_images, (1, 28, 28))     # float32 (N, 1, 28, 28) in [0, 1]
    save_grid(x, "grid.png", ncol=8)             # one PNG, written atomically
    x = load_images(["a.png", "b.png"])          # float32 (N, C, H, W) in [0, 1]

Every malformed input raises ``aeserve.InputError`` (or ``DataError`` for unreadable
files) with a message saying what was wrong and what was expected.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import DataError, InputError

__all__ = ["IMAGE_SUFFIXES", "as_batch", "as_latents", "save_grid", "load_images", "read_image", "read_images", "to_uint8"]

# file suffixes read as images (by Pillow) wherever a path may name an image
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_FLOAT_KINDS = (np.float16, np.float32, np.float64)


def _describe(shape: Sequence[int | str]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _as_array(x: Any, what: str) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    if x is None or isinstance(x, (str, bytes, dict, set)):
        raise InputError(f"{what} must be an array of images, got {type(x).__name__}")
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as e:  # ragged lists and the like
        raise InputError(f"{what} could not be read as an array ({e}); expected a numeric array") from e


def as_batch(x: Any, input_shape: Sequence[int], *, allow_single: bool = False,
             what: str = "images") -> np.ndarray:
    """Validate and convert images to a float32 ``(N, *input_shape)`` batch in [0, 1].

        as_batch(np.zeros((5, 28, 28), np.uint8), (1, 28, 28)).shape   # (5, 1, 28, 28)

    Accepts float16/32/64 arrays with values in [0, 1] and uint8 arrays (divided by 255).
    ``(N, H, W)`` is accepted when the model has one channel; a single image ``(C, H, W)``
    or ``(H, W)`` only with ``allow_single=True``. Raises InputError on an empty batch,
    another dtype, NaN/Inf, floats outside [0, 1], or a shape that does not match.
    """
    shape = tuple(int(d) for d in input_shape)
    arr = _as_array(x, what)
    if arr.dtype == np.uint8 or arr.dtype.type in _FLOAT_KINDS:
        pass
    elif arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{what} have dtype {arr.dtype}; expected uint8 (0..255) or float in [0, 1] "
                         "(convert with x.astype(np.uint8) or x.astype(np.float32) / 255)")
    else:
        raise InputError(f"{what} have dtype {arr.dtype}; expected uint8 (0..255) or float32/float64 in [0, 1]")

    arr = _fit_shape(arr, shape, allow_single, what)
    if arr.shape[0] == 0:
        raise InputError(f"{what} are empty (0 items); expected at least one image of shape {_describe(shape)}")

    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    lo, hi = float(arr.min()), float(arr.max())      # NaN propagates; Inf is out of range
    if 0.0 <= lo and hi <= 1.0:
        return np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        bad = int(arr.size - np.isfinite(arr).sum())
        raise InputError(f"{what} contain {bad} NaN/Inf value(s); expected finite values in [0, 1]")
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"{what} have values in [{lo:.4g}, {hi:.4g}]; expected floats in [0, 1] "
                         "(or uint8 in 0..255)")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _fit_shape(arr: np.ndarray, shape: tuple[int, ...], allow_single: bool, what: str) -> np.ndarray:
    want = _describe(("N", *shape))
    if arr.shape[1:] == shape:
        return arr
    if len(shape) == 3 and shape[0] == 1 and arr.shape[1:] == shape[1:]:
        return arr[:, None]                                   # (N, H, W) for one channel
    if allow_single:
        if arr.shape == shape:
            return arr[None]
        if len(shape) == 3 and shape[0] == 1 and arr.shape == shape[1:]:
            return arr[None, None]
    if len(shape) == 3 and arr.ndim == 4 and arr.shape[2:] == shape[1:]:
        raise InputError(f"{what} have {arr.shape[1]} channel(s) (shape {_describe(arr.shape)}); "
                         f"the model expects {shape[0]} channel(s): {want}")
    single = " or one image " + _describe(shape) if allow_single else ""
    raise InputError(f"{what} have shape {_describe(arr.shape)}; expected {want}"
                     + (f" or (N, {shape[1]}, {shape[2]})" if len(shape) == 3 and shape[0] == 1 else "")
                     + single)


def as_latents(z: Any, latent_dim: int, *, allow_single: bool = False, what: str = "latents") -> np.ndarray:
    """Validate latents: float ``(N, latent_dim)`` (or ``(latent_dim,)`` with allow_single),
    finite, non-empty -> float32 contiguous. Raises InputError otherwise.

        as_latents(np.zeros((3, 16)), 16).dtype   # float32
    """
    arr = _as_array(z, what)
    if arr.dtype.type not in _FLOAT_KINDS and not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{what} have dtype {arr.dtype}; expected float32 of shape (N, {latent_dim})")
    if allow_single and arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != latent_dim:
        raise InputError(f"{what} have shape {_describe(arr.shape)}; expected (N, {latent_dim})")
    if arr.shape[0] == 0:
        raise InputError(f"{what} are empty (0 rows); expected at least one row of {latent_dim} values")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise InputError(f"{what} contain NaN/Inf; expected finite float32 values")
    return np.ascontiguousarray(arr)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8 0..255 (rounded, clipped)."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def save_grid(images: Any, path: str | os.PathLike[str], ncol: int | None = None, pad: int = 2) -> Path:
    """Write images ``(N, C, H, W)`` (or ``(N, H, W)``) in [0, 1] as one PNG grid, atomically.

        save_grid(client.generate(n=16), "grid.png")   # 4x4 grid, returns Path("grid.png")

    ``ncol`` defaults to ceil(sqrt(N)); ``pad`` pixels of black between tiles. C must be
    1 (grey) or 3 (RGB). Raises InputError on bad images, DataError if the file cannot be written.
    """
    arr = _as_array(images, "images")
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise InputError(f"images have shape {_describe(arr.shape)}; expected (N, C, H, W) with C 1 or 3")
    c, h, w = arr.shape[1:]
    x = as_batch(arr, (c, h, w))
    n = x.shape[0]
    if ncol is None:
        ncol = int(np.ceil(np.sqrt(n)))
    if int(ncol) < 1 or int(pad) < 0:
        raise InputError(f"ncol must be >= 1 and pad >= 0, got ncol={ncol}, pad={pad}")
    ncol = min(int(ncol), n)
    nrow = -(-n // ncol)
    canvas = np.zeros((c, nrow * h + (nrow - 1) * pad, ncol * w + (ncol - 1) * pad), np.uint8)
    tiles = to_uint8(x)
    for i in range(n):
        r, q = divmod(i, ncol)
        canvas[:, r * (h + pad): r * (h + pad) + h, q * (w + pad): q * (w + pad) + w] = tiles[i]
    return _write_png(canvas, Path(path))


def _write_png(chw: np.ndarray, path: Path) -> Path:
    import io

    from PIL import Image

    from .fileio import write_bytes_atomic

    img = Image.fromarray(chw[0] if chw.shape[0] == 1 else np.moveaxis(chw, 0, -1))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return write_bytes_atomic(path, buf.getvalue())


_WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")   # Pillow's 16/32-bit integer greyscale
_GREY_MODES = ("1", "L", "LA")
_U16_MAX = 65535


def read_image(path: str | os.PathLike[str], *, channels: int | None = None) -> np.ndarray:
    """One image file (PNG, or anything Pillow opens) -> ``(C, H, W)``; the one reading rule.

        read_image("digit.png")                 # uint8 (1, 28, 28), the stored bytes
        read_image("scan16.png")                # float32 (1, H, W) = value / 65535, in [0, 1]

    8-bit files come back as uint8 (0..255 means 0..1); 16-bit greyscale files as float32
    ``value / 65535`` in [0, 1], never saturated or refused. Greyscale modes give C=1,
    colour (RGB, palette, RGBA: alpha dropped) C=3; ``channels`` forces 1 or 3. Raises
    DataError for a missing or unreadable file, a 32-bit float image (mode F) or integer
    values outside 0..65535.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        with Image.open(p) as img:
            if img.mode in _WIDE_MODES:
                return _wide_grey(p, np.asarray(img), channels)
            if img.mode == "F":
                raise DataError(f"{p}: 32-bit float image (mode F) is not supported; "
                                "expected 8-bit grey/RGB or 16-bit grey")
            mode = {1: "L", 3: "RGB"}.get(channels or 0) or ("L" if img.mode in _GREY_MODES else "RGB")
            arr = np.asarray(img.convert(mode), dtype=np.uint8)
    except FileNotFoundError as e:
        raise DataError(f"image file {p} does not exist") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"cannot read image {p}: {' '.join(str(e).split()) or type(e).__name__}") from e
    return arr[None] if arr.ndim == 2 else np.ascontiguousarray(np.moveaxis(arr, -1, 0))


def _wide_grey(p: Path, arr: np.ndarray, channels: int | None) -> np.ndarray:
    lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
    if lo < 0 or hi > _U16_MAX:
        raise DataError(f"{p}: integer pixel values range [{lo}, {hi}]; expected 16-bit values 0..{_U16_MAX}")
    x = (arr.astype(np.float32) / np.float32(_U16_MAX))[None]
    return np.repeat(x, 3, axis=0) if channels == 3 else x


def read_images(paths: Sequence[str | os.PathLike[str]], *, channels: int | None = None) -> np.ndarray:
    """Image files -> one ``(N, C, H, W)`` array, each read by :func:`read_image`.

    uint8 if every file is 8-bit, else float32 in [0, 1] (8-bit files / 255, 16-bit / 65535).
    Raises InputError for no paths or a bad ``channels``, DataError for unreadable files or
    a file whose (C, H, W) differs from the first one's.
    """
    files = [Path(p) for p in paths]
    if not files:
        raise InputError("no image paths given; expected at least one image file")
    if channels not in (None, 1, 3):
        raise InputError(f"channels must be 1 or 3, got {channels}")
    images: list[np.ndarray] = []
    for f in files:
        img = read_image(f, channels=channels)
        if images and img.shape != images[0].shape:
            raise DataError(f"{f}: image is (C, H, W) {img.shape}; expected {images[0].shape} like "
                            f"{files[0].name} (all images must share size and channels)")
        images.append(img)
    if all(a.dtype == np.uint8 for a in images):
        return np.stack(images)
    return np.stack([a.astype(np.float32) / np.float32(255) if a.dtype == np.uint8 else a for a in images])


def load_images(paths: Iterable[str | os.PathLike[str]], *, channels: int | None = None) -> np.ndarray:
    """Read image files into float32 ``(N, C, H, W)`` in [0, 1] (:func:`read_images`, as floats).

        x = load_images(["a.png", "b.png"])    # (2, 1, 28, 28) for 28x28 greyscale files

    ``channels`` forces 1 (grey) or 3 (RGB); by default greyscale files give C=1 and colour
    files C=3; 16-bit greyscale files are scaled by 1/65535. All images must have the same
    size. Raises DataError if a file is missing, unreadable or of another size, InputError
    if the list is empty.
    """
    x = read_images(list(paths), channels=channels)
    return x.astype(np.float32) / np.float32(255.0) if x.dtype == np.uint8 else x
