"""``aeserve finetune``: a thin shell over ``aeserve.finetune.finetune`` and ``export_classifier``.

    aeserve finetune --ckpt export/checkpoints/mnist_vae.pt --labels 100 --name mnist_vae
    aeserve finetune --ckpt vae.pt --labels 1000 --mode probe --repo model_repository --out clf.pt
"""

from __future__ import annotations

import os

import click

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (see cli/train.py)

from ..repository import DEFAULT_REPOSITORY  # noqa: E402


@click.command("finetune")
@click.option("--ckpt", required=True, help="autoencoder checkpoint written by `aeserve train`")
@click.option("--labels", type=int, required=True, help="labelled training images to use (class-balanced)")
@click.option("--mode", default="finetune", show_default=True,
              help="finetune (encoder + head, with the unlabelled rest) | probe (frozen encoder)")
@click.option("--data", default=None, help="labelled data [default: the checkpoint's dataset]")
@click.option("--steps", type=int, default=None, help="optimiser steps [default: 300 probe, 1500 finetune]")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--repo", default=DEFAULT_REPOSITORY, show_default=True, help="Triton model repository")
@click.option("--name", default=None, help="serves as <name>_classifier [default: checkpoint file stem]")
@click.option("--max-batch", type=int, default=256, show_default=True, help="Triton max_batch_size")
@click.option("--kind", type=click.Choice(["gpu", "cpu"]), default="gpu", show_default=True,
              help="Triton instance_group kind")
@click.option("--out", default=None, help="also save the classifier checkpoint here (for export/manifest.json)")
@click.option("--no-export", is_flag=True, help="train and report only; write nothing to --repo")
@click.option("--quiet", is_flag=True, help="no progress bar")
def finetune_command(ckpt: str, labels: int, mode: str, data: str | None, steps: int | None, seed: int, repo: str,
                     name: str | None, max_batch: int, kind: str, out: str | None, no_export: bool,
                     quiet: bool) -> None:
    """Train a classifier head (and fine-tune the encoder) on N labels; export <name>_classifier."""
    from pathlib import Path

    from .. import checkpoint
    from ..export.classifier import export_classifier
    from ..export.triton_config import ServingSettings
    from ..export.writer import check_repository_path
    from ..finetune import finetune
    from ..repository import check_model_name

    name = check_model_name(name if name is not None else Path(ckpt).stem)
    ServingSettings(max_batch=max_batch, kind=kind)
    if not no_export:
        check_repository_path(repo)
    result = finetune(ckpt, labels, data=data, mode=mode, steps=steps, seed=seed, progress=not quiet)
    acc = "no test split" if result.accuracy is None else f"test accuracy {result.accuracy:.4f}"
    click.echo(f"{mode} on {labels} labels: {acc}")
    if not no_export:
        r = export_classifier(result.model, repo, name, max_batch=max_batch, kind=kind)
        click.echo(f"exported {name}_classifier version {r.version}: {r.paths['classifier']}")
    if out is not None:
        click.echo(f"saved {checkpoint.save(result.model, out)}")


COMMANDS = {"finetune": finetune_command}
