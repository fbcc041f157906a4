"""``aeserve fit-prior`` and ``aeserve shift``: thin shells over the prior and arithmetic APIs.

    aeserve fit-prior --model mnist_vae                          # new version with the prior in its card
    aeserve fit-prior --model mnist_vae --out export/priors/mnist_vae.json   # entries for the manifest
    aeserve shift --data mnist --limit 6 --source 1 --target 7 --alphas 0,0.25,0.5,0.75,1 --out shift.png
    aeserve shift a.png b.png --with 7s.npy --without 1s.npy --out shift.png
"""

from __future__ import annotations

import json

import click

from ..errors import ConfigError, InputError
from ..fileio import write_bytes_atomic
from ..repository import DEFAULT_REPOSITORY
from .client_verbs import _check_out, _client, _connection, _data_options, _inputs, _write_images


@click.command("fit-prior")
@click.option("--model", required=True, help="model name in the repository")
@click.option("--repo", default=DEFAULT_REPOSITORY, show_default=True, help="model repository")
@click.option("--data", default=None, help="training data [default: the card's dataset]; its train split is used")
@click.option("--limit", type=int, default=None, help="use the first N training images")
@click.option("--no-labels", is_flag=True, help="one mixture over all codes, even where the data has labels")
@click.option("--budget-kb", type=int, default=96, show_default=True, help="card bytes the prior may cost (KiB)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", default=None, help="write the card entries to this JSON file (for export/manifest.json "
                                          "or `aeserve export --prior`) instead of a new model version")
@click.option("--quiet", is_flag=True)
def fit_prior_command(model: str, repo: str, data: str | None, limit: int | None, no_labels: bool, budget_kb: int,
                      seed: int, out: str | None, quiet: bool) -> None:
    """Fit a Gaussian-mixture latent prior to the model's training codes and store it in its card."""
    from ..client import Client
    from ..export.recard import write_card_version
    from ..prior_fit import fit_model_prior

    if budget_kb < 1:
        raise InputError(f"--budget-kb must be >= 1, got {budget_kb}")
    log = (lambda m: None) if quiet else (lambda m: click.echo(m, err=True))
    with Client(None, model, repository=repo) as c:
        entries, report = fit_model_prior(c, data, limit=limit, labelled=not no_labels,
                                          budget_bytes=budget_kb * 1024, seed=seed, progress=log)
    summary = (f"{report['components']} components over {report['n']} codes of {report['data']}, "
               f"prior {report['card_bytes']} card bytes, fitted in {report['seconds']} s")
    if out is not None:
        path = _check_out(out, (".json",))
        write_bytes_atomic(path, (json.dumps(entries, indent=1, sort_keys=True) + "\n").encode())
        click.echo(f"wrote {path}: {summary}")
    else:
        version = write_card_version(repo, model, entries)
        click.echo(f"wrote {model} version {version} in {repo}: {summary}")


def _alphas(text: str) -> list[float]:
    try:
        return [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise InputError(f"--alphas must be comma-separated numbers like 0,0.5,1; got {text!r}") from None


@click.command("shift")
@_data_options(limit=8)
@click.option("--with", "x_with", default=None, help="images WITH the attribute (.npy/.npz/IDX/PNG folder)")
@click.option("--without", "x_without", default=None, help="images WITHOUT the attribute")
@click.option("--target", default=None, help="class (index or name) to move towards (fitted prior)")
@click.option("--source", default=None, help="class (index or name) to move away from (fitted prior)")
@click.option("--alphas", default="0,0.25,0.5,0.75,1", show_default=True, help="comma-separated steps along v")
@click.option("--out", required=True, help="strip.png (one row per image, one column per alpha), or .npy")
@_connection
def shift_command(sources: tuple[str, ...], data: str | None, split: str | None, limit: int | None,
                  x_with: str | None, x_without: str | None, target: str | None, source: str | None, alphas: str,
                  out: str, url: str | None, model: str | None, repo: str | None, quiet: bool) -> None:
    """Latent arithmetic: decode z + alpha * v for each input image, v from two example sets or two classes."""
    from ..data import load_dataset

    path = _check_out(out, (".png", ".npy"))
    steps = _alphas(alphas)
    by_sets, by_labels = (x_with, x_without) != (None, None), (target, source) != (None, None)
    if by_sets == by_labels or None in ((x_with, x_without) if by_sets else (target, source)):
        raise ConfigError("give either --with and --without (example sets) or --target and --source (classes)")
    with _client(url, model, repo, quiet) as c:
        if by_sets:
            assert x_with is not None and x_without is not None   # checked above
            v = c.attribute_vector(load_dataset(x_with, "all").x, load_dataset(x_without, "all").x)
        else:
            v = c.label_vector(target, source)
        x, _ = _inputs(c, sources, data, split, limit)
        strips = c.shift(x, v, alphas=steps)
        _write_images(strips.reshape(-1, *strips.shape[2:]), path, ncol=len(steps))
        click.echo(f"wrote {path}: {len(x)} images x {len(steps)} steps along |v| = {float((v ** 2).sum()) ** 0.5:.3f} "
                   f"from {c.model}")


COMMANDS = {"fit-prior": fit_prior_command, "shift": shift_command}
