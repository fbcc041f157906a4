"""``aeserve eval``: a thin shell over ``aeserve.eval.evaluate``.

    aeserve eval --model mnist_vae --limit 1000 --k 100 --out report.json
    aeserve eval --model mnist_vae --url grpc://localhost:8001          # measure a Triton deployment
    aeserve eval --one-class mnist --train                              # only the one-class protocol (trains 10 models)
"""

from __future__ import annotations

from pathlib import Path

import click

from ..eval.core import SECTIONS


def _default_plot(out: str | None) -> Path | None:
    if out is None:
        return None
    p = Path(out)
    return p.with_name(p.stem + "_rd.png")


@click.command("eval")
@click.option("--model", default=None, help="model name [default: mnist_vae if present]")
@click.option("--data", default=None, help="dataset name or path [default: the model card's dataset]; test split")
@click.option("--url", default=None, help="Triton URL http://host[:8000] or grpc://host[:8001] "
                                          "[default: $AESERVE_URL, else embedded ONNX Runtime]")
@click.option("--repo", default=None, help="model repository for embedded runs [default: ./model_repository]")
@click.option("--limit", type=int, default=None, help="use the first N test images [default: all]")
@click.option("--subset", type=int, default=None, hidden=True, help="deprecated name of --limit")
@click.option("--sections", default=None, metavar="LIST",
              help=f"comma-separated subset of: {','.join(SECTIONS)} [default: all]")
@click.option("--k", "k", type=int, default=5000, show_default=True, help="importance samples per image (IWAE)")
@click.option("--likelihood-n", type=int, default=100, show_default=True,
              help="test images used for the likelihood bounds (the most expensive section)")
@click.option("--binarize/--no-binarize", default=None,
              help="dynamically binarize images for the likelihood [default: on for Bernoulli decoders]")
@click.option("--one-class", "one_class", default=None, metavar="DATASET",
              help="run only the one-class anomaly protocol on DATASET (no --model needed)")
@click.option("--train", "train_one_class", is_flag=True,
              help="train the ten one-class models (anomaly section) before scoring; needs torch")
@click.option("--one-class-repo", default=None, help="repository of the one-class models [default: out/one_class]")
@click.option("--members", type=int, default=None,
              help="one-class models per class, a seed ensemble whose mean score is the class's score "
                   "[default: aeserve.eval.one_class.MEMBERS]")
@click.option("--n-generate", type=int, default=None, help="generated samples [default: min(test size, 10000)]")
@click.option("--temperature", type=float, default=1.0, show_default=True)
@click.option("--classifier", default=None,
              help="classifier ONNX [default: export/classifiers/<dataset>_classifier.onnx]")
@click.option("--compression-n", type=int, default=1000, show_default=True, help="images for the codec comparison")
@click.option("--finetune-ckpt", default=None,
              help="features section: also fine-tune this autoencoder checkpoint at each label count (torch)")
@click.option("--finetune-steps", type=int, default=None, help="features section: fine-tuning steps")
@click.option("--no-baselines", is_flag=True, help="skip the PCA baselines (saves fitting PCA on the train split)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", default=None, help="write the JSON report here (atomically)")
@click.option("--plot", default=None, help="rate-distortion PNG [default: <out stem>_rd.png when --out is given]")
@click.option("--quiet", is_flag=True, help="no progress output")
def eval_command(model, data, url, repo, limit, subset, sections, k, likelihood_n, binarize, one_class, train_one_class,
                 one_class_repo, members, n_generate, temperature, classifier, compression_n, finetune_ckpt, finetune_steps,
                 no_baselines, seed, out, plot, quiet) -> None:
    """Measure a model's quality on its test split through the Client; print a table."""
    from ..eval import evaluate, evaluate_one_class, format_table, write_json

    log = (lambda m: None) if quiet else (lambda m: click.echo(m, err=True))
    if subset is not None:
        click.echo("warning: --subset is deprecated; use --limit", err=True)
        limit = subset if limit is None else limit
    if one_class is not None:
        report = evaluate_one_class(one_class, url, limit=limit, train=train_one_class, repository=one_class_repo,
                                    seed=seed, members=members, progress=not quiet, log=log)
    else:
        report = evaluate(
            model, data, url, repository=repo, limit=limit, sections=sections, k=k, likelihood_n=likelihood_n,
            binarize=binarize, seed=seed, baselines=not no_baselines, train_one_class=train_one_class,
            one_class_repository=one_class_repo, one_class_members=members, n_generate=n_generate, temperature=temperature,
            classifier=classifier, compression_n=compression_n, plot=plot or _default_plot(out),
            progress=not quiet, log=log, finetune_ckpt=finetune_ckpt, finetune_steps=finetune_steps)
    click.echo(format_table(report))
    if out is not None:
        click.echo(f"report written to {write_json(report, out)}", err=True)


COMMANDS = {"eval": eval_command}
