"""``aeserve build-classifier``: a thin shell over ``aeserve.classifier_train.build_classifier``.

    aeserve build-classifier mnist fashion-mnist --epochs 3 --seed 0   # -> export/classifiers/*.onnx
"""

from __future__ import annotations

import click


@click.command("build-classifier")
@click.argument("datasets", nargs=-1, required=True)
@click.option("--epochs", type=int, default=3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--limit", type=int, default=None, help="train on at most N images")
@click.option("--out-dir", default=None, help="directory for the ONNX files [default: export/classifiers]")
@click.option("--quiet", is_flag=True, help="no progress bars")
def build_classifier_command(datasets: tuple[str, ...], epochs: int, seed: int, limit: int | None,
                             out_dir: str | None, quiet: bool) -> None:
    """Train the reference classifier that judges generated images (mnist and/or fashion-mnist),
    check its ONNX export against torch, and write it."""
    from pathlib import Path

    from ..classifier import classifier_filename
    from ..classifier_train import build_classifier

    for ds in datasets:
        out = Path(out_dir) / classifier_filename(ds) if out_dir else None
        info = build_classifier(ds, out, epochs=epochs, seed=seed, limit=limit, progress=not quiet)
        click.echo(f"{info['dataset']}: test accuracy {info['test_accuracy']:.4f} -> {info['path']}")


COMMANDS = {"build-classifier": build_classifier_command}
