"""Client verbs: thin shells over ``aeserve.Client`` (no torch).

    aeserve generate -n 64 --seed 0 --temperature 1.0 --out grid.png
    aeserve generate -n 10 --by-class --out classes.png      # one row per class (fitted prior)
    aeserve interpolate a.png b.png --steps 10 --method slerp --out strip.png
    aeserve denoise noisy.npy --out clean.png --compare
    aeserve compress --data mnist --split test --out test.aez --psnr
    aeserve decompress test.aez --out test.png          # or --out test.npy
    aeserve score --data fashion-mnist --limit 1000 --out scores.csv --method elbo --k 16
    aeserve latent-plot --data mnist --limit 5000 --out latent.png

Every verb takes ``--url`` (Triton ``http://``/``grpc://``; default ``$AESERVE_URL`` or
embedded), ``--model`` and ``--repo``. Inputs are image files (PNG, ...), one dataset path
(``.npy``/``.npz``/IDX/PNG folder) or ``--data NAME`` with ``--split``/``--limit``. Outputs
are written atomically and only after the work succeeded; ``.png`` outputs are grids,
``.npy`` outputs the float32 ``(N, C, H, W)`` array.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Callable

import click
import numpy as np

from ..errors import DataError, InputError, SplitNotFoundError
from ..fileio import write_bytes_atomic
from ..images import IMAGE_SUFFIXES, as_batch

ARRAY_OUTPUTS = (".png", ".npy")


# ---- shared plumbing --------------------------------------------------------------------
def _connection(f: Callable[..., Any]) -> Callable[..., Any]:
    opts = [
        click.option("--url", default=None, help="Triton URL http://host[:8000] or grpc://host[:8001] "
                                                  "[default: $AESERVE_URL, else embedded ONNX Runtime]"),
        click.option("--model", default=None, help="model name [default: mnist_vae if present]"),
        click.option("--repo", default=None, help="model repository for embedded runs "
                                                   "[default: $AESERVE_REPOSITORY or ./model_repository]"),
        click.option("--quiet", is_flag=True, help="no progress bar"),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _data_options(limit: int | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option("--limit", type=int, default=limit, show_default=limit is not None,
                         help="use at most this many samples")(f)
        f = click.option("--split", default=None, help="train | test | all [default: test for --data, all for a path]")(f)
        f = click.option("--data", default=None, help="dataset name (mnist, fashion-mnist) instead of SOURCES")(f)
        return click.argument("sources", nargs=-1)(f)
    return wrap


def _grid_output(out_help: str, compare_help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--out`` (PNG grid or .npy), ``--compare`` and ``--ncol`` for a verb that writes images."""
    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option("--ncol", type=int, default=None, help="grid columns")(f)
        f = click.option("--compare", is_flag=True, help=compare_help)(f)
        return click.option("--out", required=True, help=out_help)(f)
    return wrap

def _client(url: str | None, model: str | None, repo: str | None, quiet: bool) -> Any:
    from ..client import Client

    return Client(url, model, repository=repo, progress=not quiet)


def _inputs(client: Any, sources: tuple[str, ...], data: str | None, split: str | None,
            limit: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Images (and labels, if the source has them) from SOURCES or --data."""
    x, y, _ = _dataset(client, sources, data, split, limit)
    return x, y


def _dataset(client: Any, sources: tuple[str, ...], data: str | None, split: str | None,
             limit: int | None) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...] | None]:
    """Images, labels and class names (None where the source has none) from SOURCES or --data."""
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be >= 1, got {limit}")
    if data is not None and sources:
        raise InputError("give either SOURCES or --data, not both")
    if data is None and not sources:
        raise InputError("no input: give image files, a dataset path (.npy/.npz/IDX/PNG folder) or --data NAME")
    if data is None and all(Path(s).suffix.lower() in IMAGE_SUFFIXES for s in sources):
        from ..images import load_images

        x = load_images(sources[:limit] if limit else sources, channels=client.card.input_shape[0])
        return x, None, None
    if data is None and len(sources) > 1:
        raise InputError(f"got {len(sources)} non-image sources; expected image files or ONE dataset path")
    from ..data import load_dataset

    source, wanted = data if data is not None else sources[0], split or ("test" if data else "all")
    try:
        ds = load_dataset(source, wanted, limit=limit)
    except SplitNotFoundError as e:
        raise SplitNotFoundError(f"{source} has no {wanted!r} split; pass --split all (everything it holds) "
                                 "or --split train") from e
    return ds.x, ds.y, ds.class_names


def _check_out(out: str, allowed: tuple[str, ...] | None) -> Path:
    """``--out`` as a Path, checked before any work is done (suffix in ``allowed``; None: any)."""
    path = Path(out)
    if allowed is not None and path.suffix.lower() not in allowed:
        raise InputError(f"--out {out!r} must end in {' or '.join(allowed)}")
    if path.is_dir():
        raise InputError(f"--out {out!r} is a directory; expected a file path")
    return path


def _write_images(images: np.ndarray, path: Path, ncol: int | None = None) -> Path:
    if path.suffix.lower() == ".npy":
        buf = io.BytesIO()
        np.save(buf, np.asarray(images, dtype=np.float32))
        return write_bytes_atomic(path, buf.getvalue())
    from ..images import save_grid

    return save_grid(images, path, ncol=ncol)


def _interleave_rows(a: np.ndarray, b: np.ndarray, ncol: int) -> np.ndarray:
    """Rows of ``ncol`` images: a-row, b-row, a-row, ... (for before/after grids)."""
    pieces = []
    for s in range(0, len(a), ncol):
        pad = ncol - len(a[s:s + ncol])
        blank = np.zeros((pad, *a.shape[1:]), a.dtype)
        pieces += [a[s:s + ncol], blank, b[s:s + ncol], blank]
    return np.concatenate(pieces)


# ---- verbs ------------------------------------------------------------------------------
@click.command("generate")
@click.option("-n", "--n", "n", type=int, default=64, show_default=True, help="number of images (per class with --by-class)")
@click.option("--seed", type=int, default=0, show_default=True, help="image i depends only on (seed, i)")
@click.option("--temperature", type=float, default=1.0, show_default=True, help="scales the prior's spread")
@click.option("--prior", type=click.Choice(["fitted", "standard"]), default=None,
              help="fitted: the card's Gaussian mixture; standard: N(0, I) (VAE) [default: fitted where present]")
@click.option("--label", default=None, help="class index or name: sample that class only (fitted prior)")
@click.option("--by-class", is_flag=True, help="one row of -n images per class of the fitted prior")
@click.option("--ncol", type=int, default=None, help="grid columns [default: sqrt(n)]")
@click.option("--out", required=True, help="grid.png, or images.npy")
@_connection
def generate_command(n: int, seed: int, temperature: float, prior: str | None, label: str | None, by_class: bool,
                     ncol: int | None, out: str, url: str | None, model: str | None, repo: str | None,
                     quiet: bool) -> None:
    """Sample images from the model's prior and write them as a PNG grid."""
    path = _check_out(out, ARRAY_OUTPUTS)
    with _client(url, model, repo, quiet) as c:
        if by_class:
            if label is not None:
                raise InputError("give --label or --by-class, not both")
            fitted = c.prior
            if fitted is None or not fitted.classes:
                raise InputError(f"--by-class needs a fitted prior with classes; model {c.model} has none "
                                 f"(fit one with `aeserve fit-prior --model {c.model}`)")
            images = np.concatenate([c.generate(n, seed=seed, temperature=temperature, prior=prior, label=k)
                                     for k in fitted.classes])
            ncol = n
        else:
            images = c.generate(n, seed=seed, temperature=temperature, prior=prior, label=label)
        _write_images(images, path, ncol)
        which = prior or ("fitted" if c.prior is not None else "standard")
        click.echo(f"wrote {path}: {len(images)} images from {c.model} ({which} prior, seed {seed}, "
                   f"temperature {temperature}{'' if label is None else f', label {label}'})")


@click.command("interpolate")
@click.argument("images", nargs=-1, required=True)
@click.option("--steps", type=int, default=8, show_default=True, help="images per segment, ends included")
@click.option("--method", default="slerp", show_default=True, help="slerp | lerp")
@click.option("--out", required=True, help="strip.png, or path.npy")
@_connection
def interpolate_command(images: tuple[str, ...], steps: int, method: str, out: str,
                        url: str | None, model: str | None, repo: str | None, quiet: bool) -> None:
    """Decode a latent path through 2 or more images (A.png B.png [C.png ...]) as one strip."""
    path = _check_out(out, ARRAY_OUTPUTS)
    if len(images) < 2:
        raise InputError(f"interpolate needs at least 2 images, got {len(images)}")
    from ..images import load_images

    with _client(url, model, repo, quiet) as c:
        points = load_images(images, channels=c.card.input_shape[0])
        strip = c.interpolate_path(points, steps=steps, method=method)
        _write_images(strip, path, ncol=len(strip))
        click.echo(f"wrote {path}: {len(strip)} images ({method}, {steps} steps per segment) from {c.model}")


@click.command("denoise")
@_data_options()
@_grid_output("clean.png grid, or clean.npy", "PNG: alternate rows of inputs and outputs")
@_connection
def denoise_command(sources: tuple[str, ...], data: str | None, split: str | None, limit: int | None, out: str,
                    compare: bool, ncol: int | None, url: str | None, model: str | None, repo: str | None,
                    quiet: bool) -> None:
    """Reconstruct (noisy) images through the model; meaningful with a denoising AE."""
    path = _check_out(out, ARRAY_OUTPUTS)
    with _client(url, model, repo, quiet) as c:
        x, _ = _inputs(c, sources, data, split, limit)
        clean = c.denoise(x)
        if compare and path.suffix.lower() == ".png":
            cols = ncol or int(np.ceil(np.sqrt(len(clean))))
            _write_images(_interleave_rows(as_batch(x, c.card.input_shape), clean, cols), path, cols)
        else:
            _write_images(clean, path, ncol)
        click.echo(f"wrote {path}: {len(clean)} images denoised by {c.model}")


@click.command("compress")
@_data_options()
@click.option("--out", required=True, help="payload file, e.g. test.aez")
@click.option("--psnr", "report_psnr", is_flag=True, help="also decompress and report PSNR vs the input "
                                                          "and vs a plain reconstruction")
@click.option("--bits", type=int, default=None, help="bits per latent dimension (default 7): fewer bytes, lower PSNR")
@_connection
def compress_command(sources: tuple[str, ...], data: str | None, split: str | None, limit: int | None, out: str,
                     report_psnr: bool, bits: int | None, url: str | None, model: str | None, repo: str | None, quiet: bool) -> None:
    """Encode images into a compact, checked payload; prints bytes per image."""
    from ..compress import peek_header

    path = _check_out(out, None)
    with _client(url, model, repo, quiet) as c:
        x, _ = _inputs(c, sources, data, split, limit)
        blob = c.compress(x, bits=bits)
        lines = []
        if report_psnr:
            from ..metrics import psnr

            xf = as_batch(x, c.card.input_shape)
            p_dec, p_rec = psnr(xf, c.decompress(blob)), psnr(xf, c.reconstruct(xf))
            lines.append(f"PSNR: decompressed {p_dec:.2f} dB, reconstruct {p_rec:.2f} dB "
                         f"(quantization costs {p_rec - p_dec:.3f} dB)")
        write_bytes_atomic(path, blob)
        h = peek_header(blob)
        click.echo(f"wrote {path}: {h.n} images -> {len(blob)} bytes ({h.bytes_per_item:.2f} B/image; "
                   f"{c.model} v{h.version}, {h.bits} bits, coder {h.coder})")
        for line in lines:
            click.echo(line)


@click.command("decompress")
@click.argument("payload", type=click.Path(dir_okay=False))
@click.option("--out", required=True, help="grid.png, or images.npy")
@click.option("--ncol", type=int, default=None, help="grid columns")
@_connection
def decompress_command(payload: str, out: str, ncol: int | None, url: str | None, model: str | None,
                       repo: str | None, quiet: bool) -> None:
    """Decode a payload from `aeserve compress` (model defaults to the one named in it)."""
    from ..compress import peek_header

    path = _check_out(out, ARRAY_OUTPUTS)
    try:
        blob = Path(payload).read_bytes()
    except OSError as e:
        raise DataError(f"cannot read payload {payload}: {e.strerror or e}") from e
    header = peek_header(blob)
    with _client(url, model or header.model, repo, quiet) as c:
        images = c.decompress(blob)
        _write_images(images, path, ncol)
        click.echo(f"wrote {path}: {len(images)} images decoded by {c.model} v{c.version}")


@click.command("score")
@_data_options()
@click.option("--out", required=True, help="CSV with columns index,score,is_anomaly")
@click.option("--method", default="mse", show_default=True, help="mse | elbo (VAE: negative ELBO in nats)")
@click.option("-k", "--k", "k", type=int, default=16, show_default=True, help="elbo: posterior samples per image")
@click.option("--seed", type=int, default=0, show_default=True, help="elbo: noise seed")
@click.option("--threshold", type=float, default=None,
              help="anomaly threshold [default: the card's anomaly.threshold when its method matches]")
@_connection
def score_command(sources: tuple[str, ...], data: str | None, split: str | None, limit: int | None, out: str,
                  method: str, k: int, seed: int, threshold: float | None, url: str | None, model: str | None,
                  repo: str | None, quiet: bool) -> None:
    """Anomaly-score images (higher = more anomalous) and write a CSV."""
    path = _check_out(out, (".csv",))
    with _client(url, model, repo, quiet) as c:
        x, _ = _inputs(c, sources, data, split, limit)
        scores = c.anomaly_score(x, method=method, k=k, seed=seed)
        if threshold is None and c.card.anomaly.get("method", "mse") == method:
            threshold = c.card.get_float("anomaly.threshold")
        flags = None if threshold is None else scores > threshold
        rows = ["index,score,is_anomaly"] + [
            f"{i},{s:.9g},{'' if flags is None else int(flags[i])}" for i, s in enumerate(scores.tolist())]
        write_bytes_atomic(path, ("\n".join(rows) + "\n").encode())
        msg = f"wrote {path}: {len(scores)} {method} scores from {c.model} (mean {scores.mean():.6g})"
        if flags is None:
            click.echo(msg + "; is_anomaly left empty: pass --threshold (the card has none for this method)")
        else:
            click.echo(msg + f"; {int(flags.sum())} above threshold {threshold:.6g}")


@click.command("latent-plot")
@_data_options(limit=5000)
@click.option("--out", required=True, help="latent.png")
@click.option("--posterior", default="mean", show_default=True, help="VAE: mean | sample")
@_connection
def latent_plot_command(sources: tuple[str, ...], data: str | None, split: str | None, limit: int | None, out: str,
                        posterior: str, url: str | None, model: str | None, repo: str | None, quiet: bool) -> None:
    """Scatter the codes of a test set, coloured by label (PCA to 2-d for larger latents).

    With no SOURCES and no --data, uses the test split of the model's own dataset."""
    from ..plots import latent_scatter

    path = _check_out(out, (".png",))
    with _client(url, model, repo, quiet) as c:
        if data is None and not sources:
            data = c.card.dataset
        x, y, names = _dataset(c, sources, data, split, limit)
        z = c.encode(x, posterior=posterior)
        if names is None and y is not None and c.card.class_names is not None:
            names = c.card.class_names if y.min() >= 0 and y.max() < len(c.card.class_names) else None
        latent_scatter(z, y, path, title=f"{c.model} ({c.card.family}/{c.card.arch}) on {data or sources[0]}",
                       class_names=names)
        click.echo(f"wrote {path}: {len(z)} codes of dim {z.shape[1]} from {c.model}")


COMMANDS = {
    "generate": generate_command,
    "interpolate": interpolate_command,
    "denoise": denoise_command,
    "compress": compress_command,
    "decompress": decompress_command,
    "score": score_command,
    "latent-plot": latent_plot_command,
}

__all__ = ["COMMANDS"]
