"""Restoration, anomaly-map and classification verbs: thin shells over ``aeserve.Client`` (no torch).

    aeserve inpaint digit.png --box 7,7,14,14 --model mnist_inpaint --out filled.png --compare
    aeserve inpaint --data mnist --limit 8 --mask hole.png --model mnist_inpaint --out filled.png
    aeserve upscale low7x7.png --model mnist_sr4 --out big.png
    aeserve upscale --data mnist --limit 8 --from-full 4 --model mnist_sr4 --out strip.png --compare
    aeserve colorize gray.png --model my_colorizer --out colour.png
    aeserve anomaly-map --data mnist --limit 16 --out overlay.png [--method nll] [--maps maps.npy]
    aeserve classify --data mnist --limit 100 --out preds.csv

Inputs as in the other client verbs (image files, a dataset path, or ``--data``). A mask is
a PNG (white/255 = missing, black/0 = known, the images' size) or ``--box TOP,LEFT,H,W``.
Outputs are written atomically, after the work succeeded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

from ..errors import InputError
from ..fileio import write_bytes_atomic
from ..images import IMAGE_SUFFIXES
from .client_verbs import ARRAY_OUTPUTS, _check_out, _client, _connection, _data_options, _grid_output, _inputs, _write_images


def _mask(mask_png: str | None, box: str | None, h: int, w: int) -> np.ndarray:
    """The (H, W) or (N, H, W) 0/255 mask from ``--mask`` or ``--box``; InputError otherwise."""
    from .. import restoration
    from ..images import load_images

    if (mask_png is None) == (box is None):
        raise InputError("give exactly one of --mask MASK.png (white = missing) or --box TOP,LEFT,HEIGHT,WIDTH")
    if box is not None:
        try:
            top, left, bh, bw = (int(v) for v in box.split(","))
        except ValueError:
            raise InputError(f"--box must be four integers TOP,LEFT,HEIGHT,WIDTH, got {box!r}") from None
        if bh < 1 or bw < 1 or not (0 <= top < h and 0 <= left < w):
            raise InputError(f"--box {box!r} is not a box inside the {h}x{w} image (TOP,LEFT,HEIGHT,WIDTH)")
        return restoration.box_mask(h, w, top, left, bh, bw)
    assert mask_png is not None   # exactly one of mask_png / box, checked above
    m = load_images([mask_png], channels=1)[0, 0]
    return np.rint(m * 255).astype(np.uint8)


def _compare_or_plain(path: Path, rows: list[np.ndarray], out: np.ndarray, ncol: int | None) -> None:
    """PNG with several ``rows`` arrays: blocks of one row of each (inputs above results); else ``out``."""
    if len(rows) > 1 and path.suffix.lower() == ".png":
        cols = ncol or min(len(out), 8)
        _write_images(_stack_rows(rows, cols), path, cols)
    else:
        _write_images(out, path, ncol)


def _stack_rows(rows: list[np.ndarray], cols: int) -> np.ndarray:
    """Blocks of ``cols`` images: row of each array in turn (inputs, results, ...), repeated."""
    rgb = any(r.shape[1] == 3 for r in rows)
    rows = [np.repeat(r, 3, axis=1) if rgb and r.shape[1] == 1 else r for r in rows]
    pieces = []
    for s in range(0, len(rows[0]), cols):
        for r in rows:
            chunk = r[s:s + cols]
            pad = np.zeros((cols - len(chunk), *chunk.shape[1:]), np.float32)
            pieces += [chunk, pad]
    return np.concatenate(pieces)


@click.command("inpaint")
@_data_options()
@click.option("--mask", "mask_png", default=None, help="mask PNG, white = missing (same size as the images)")
@click.option("--box", default=None, help="missing box TOP,LEFT,HEIGHT,WIDTH, e.g. 7,7,14,14")
@_grid_output("filled.png grid, or filled.npy", "PNG: rows of masked input above the filled result")
@_connection
def inpaint_command(sources, data, split, limit, mask_png, box, out, compare, ncol, url, model, repo, quiet) -> None:
    """Fill the missing pixels of images (known pixels are kept exactly)."""
    from .. import restoration

    path = _check_out(out, ARRAY_OUTPUTS)
    with _client(url, model, repo, quiet) as c:
        x, _ = _inputs(c, sources, data, split, limit)
        _, h, w = c.card.input_shape
        m = _mask(mask_png, box, h, w)
        filled = c.inpaint(x, m)
        shown = restoration.apply_mask(filled, restoration.check_mask(m, filled.shape))
        _compare_or_plain(path, [shown, filled] if compare else [filled], filled, ncol)
        click.echo(f"wrote {path}: {len(filled)} images inpainted by {c.model}")


@click.command("upscale")
@_data_options()
@click.option("--from-full", "from_full", type=int, default=None,
              help="inputs are full-size: downsample them by this factor first (to try the model)")
@_grid_output("big.png grid, or big.npy", "PNG with --from-full: rows low-res (nearest), upscaled, original")
@_connection
def upscale_command(sources, data, split, limit, from_full, out, compare, ncol, url, model, repo, quiet) -> None:
    """Raise the resolution of low-resolution images (x2 or x4, as the model's card says)."""
    from .. import restoration
    from ..images import as_batch, load_images

    path = _check_out(out, ARRAY_OUTPUTS)
    with _client(url, model, repo, quiet) as c:
        if sources and all(Path(s).suffix.lower() in IMAGE_SUFFIXES for s in sources):
            x = load_images(sources[:limit] if limit else sources, channels=c.card.input_shape[0])
        else:
            x, _ = _inputs(c, sources, data, split, limit)
        rows: list[Any] = []
        if from_full is not None:
            if from_full not in c.upscale_factors:
                raise InputError(f"--from-full {from_full}: model {c.model!r} upscales by "
                                 f"{', '.join(map(str, c.upscale_factors))}")
            full = as_batch(x, c.card.input_shape)
            x = restoration.downsample(full, from_full)
            rows = [restoration.upsample(x, from_full), None, full]
        big = c.upscale(x)
        if compare and rows:
            rows[1] = big
        _compare_or_plain(path, rows if compare and rows else [big], big, ncol)
        click.echo(f"wrote {path}: {len(big)} images upscaled to {big.shape[2]}x{big.shape[3]} by {c.model}")


@click.command("colorize")
@_data_options()
@_grid_output("colour.png grid, or colour.npy", "PNG: rows of greyscale input above the colour result")
@_connection
def colorize_command(sources, data, split, limit, out, compare, ncol, url, model, repo, quiet) -> None:
    """Add colour to greyscale images (colour inputs are reduced to grey first only with a dataset)."""
    from .. import restoration
    from ..images import load_images

    path = _check_out(out, ARRAY_OUTPUTS)
    with _client(url, model, repo, quiet) as c:
        if sources and all(Path(s).suffix.lower() in IMAGE_SUFFIXES for s in sources):
            gray = load_images(sources[:limit] if limit else sources, channels=1)
        else:
            x, _ = _inputs(c, sources, data, split, limit)
            gray = restoration.to_gray(x) if x.ndim == 4 and x.shape[1] == 3 else x
        colour = c.colorize(gray)
        _compare_or_plain(path, [np.asarray(gray, np.float32), colour] if compare else [colour], colour, ncol)
        click.echo(f"wrote {path}: {len(colour)} images colourised by {c.model}")


@click.command("anomaly-map")
@_data_options()
@click.option("--out", required=True, help="overlay.png: heat map over each image")
@click.option("--method", default="mse", show_default=True, help="mse | nll (VAE: expected per-pixel NLL)")
@click.option("-k", "--k", "k", type=int, default=16, show_default=True, help="nll: posterior samples per image")
@click.option("--maps", "maps_out", default=None, help="also write the raw maps as maps.npy")
@click.option("--compare", is_flag=True, help="rows of images above their overlays")
@click.option("--ncol", type=int, default=None, help="grid columns")
@_connection
def anomaly_map_command(sources, data, split, limit, out, method, k, maps_out, compare, ncol, url, model, repo,
                        quiet) -> None:
    """Per-pixel anomaly maps, written as a heat-map overlay PNG (and optionally as .npy)."""
    import io

    from ..heatmap import overlay
    from ..images import as_batch

    path = _check_out(out, (".png",))
    raw = _check_out(maps_out, (".npy",)) if maps_out else None
    with _client(url, model, repo, quiet) as c:
        x, _ = _inputs(c, sources, data, split, limit)
        maps = c.anomaly_map(x, method=method, k=k)
        rgb = overlay(as_batch(x, c.card.input_shape), maps)
        _compare_or_plain(path, [as_batch(x, c.card.input_shape), rgb] if compare else [rgb], rgb, ncol)
        if raw is not None:
            buf = io.BytesIO()
            np.save(buf, maps)
            write_bytes_atomic(raw, buf.getvalue())
        click.echo(f"wrote {path}: {len(maps)} {method} anomaly maps from {c.model} "
                   f"(mean {float(maps.mean()):.4g}, max {float(maps.max()):.4g})")


@click.command("classify")
@_data_options()
@click.option("--out", required=True, help="CSV with columns index,label,class,probability")
@click.option("--classifier", default=None, help="classifier <name> of <name>_classifier [default: --model]")
@_connection
def classify_command(sources, data, split, limit, out, classifier, url, model, repo, quiet) -> None:
    """Classify images with a fine-tuned <name>_classifier; prints accuracy when labels exist."""
    path = _check_out(out, (".csv",))
    with _client(url, model, repo, quiet) as c:
        x, y = _inputs(c, sources, data, split, limit)
        probs = c.classify(x, classifier=classifier)
        names = list(c.classifier_card(classifier).class_names or ())
        pred = probs.argmax(1)
        rows = ["index,label,class,probability"] + [
            f"{i},{p},{names[p] if p < len(names) else p},{probs[i, p]:.6f}" for i, p in enumerate(pred.tolist())]
        write_bytes_atomic(path, ("\n".join(rows) + "\n").encode())
        msg = f"wrote {path}: {len(pred)} predictions"
        if y is not None:
            msg += f"; accuracy {float((pred == y).mean()):.4f} against the data's labels"
        click.echo(msg)


COMMANDS = {
    "inpaint": inpaint_command,
    "upscale": upscale_command,
    "colorize": colorize_command,
    "anomaly-map": anomaly_map_command,
    "classify": classify_command,
}

__all__ = ["COMMANDS"]
