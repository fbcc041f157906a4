"""``aeserve train``: a thin shell over ``aeserve.train.train`` (and ``aeserve.distributed.ddp``).

    aeserve train --family vae --arch conv --latent 16 --data mnist --epochs 5 --out vae.pt
    aeserve train --family ae --epochs 5 --out ae.pt --nproc-per-node 2     # DDP, 2 processes
    torchrun --nproc-per-node 2 -m aeserve.train --family ae --epochs 5 --out ae.pt
"""

from __future__ import annotations

import os
from typing import Any

import click

# Before torch (and its OpenMP runtime) loads: idle OpenMP threads sleep instead of spinning.
# On a shared 2-core machine spinning threads starve everyone (measured: 3000 matmuls
# 128x784x512 with 2 threads while other processes ran: 70 s spinning, 3.5 s passive).
# An OMP_WAIT_POLICY the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ..errors import ConfigError


def _int_list(option: str, text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        values = [int(p) for p in text.split(",") if p.strip() != ""]
    except ValueError:
        raise ConfigError(f"{option} must be comma-separated integers like 0,1; got {text!r}") from None
    if not values:
        raise ConfigError(f"{option} is empty; give comma-separated integers like 0,1")
    return values


def _class_list(text: str | None) -> list[int | str] | None:
    """``--classes``: comma-separated integer labels and/or class names (``0,1`` or ``cat,dog``)."""
    if text is None:
        return None
    values = [p.strip() for p in text.split(",") if p.strip()]
    if not values:
        raise ConfigError("--classes is empty; give comma-separated labels like 0,1 or class names like cat,dog")
    return [int(v) if v.lstrip("-").isdigit() else v for v in values]


@click.command("train")
@click.option("--family", required=True, help="ae | dae | sparse | contractive | vae")
@click.option("--arch", default="mlp", show_default=True, help="mlp | conv")
@click.option("--latent", "latent_dim", type=int, default=16, show_default=True, help="latent size")
@click.option("--data", default="mnist", show_default=True,
              help="mnist | fashion-mnist | IDX dir | .npy/.npz | .csv | PNG folder")
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--lr-schedule", default="constant", show_default=True,
              help="constant | cosine (decay to 0 over the run)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu | cuda | cuda:N")
@click.option("--limit", type=int, default=None, help="use at most N images per split")
@click.option("--classes", default=None, help="keep only these labels, e.g. 0 or 0,1, or class names: cat,dog")
@click.option("--val-fraction", type=float, default=0.1, show_default=True)
@click.option("--likelihood", default="bernoulli", show_default=True, help="bernoulli | gaussian")
@click.option("--beta", type=float, default=None, help="vae: KL weight (default 1)")
@click.option("--lam", type=float, default=None, help="sparse/contractive: penalty weight")
@click.option("--noise", default=None, help="dae: gaussian | masking | inpaint | downsample | grayscale")
@click.option("--noise-level", type=float, default=None, help="dae: noise std, drop probability, or largest downsampling factor")
@click.option("--sigma", type=float, default=None, help="gaussian likelihood std (default 0.1)")
@click.option("--hidden", default=None, help="mlp: hidden sizes, e.g. 512,256")
@click.option("--channels", default=None, help="conv: channels per stride-2 layer, e.g. 32,64")
@click.option("--dense", type=int, default=None, help="conv: width of the dense layer")
@click.option("--out", default=None, help="checkpoint path [default: <family>.pt]")
@click.option("--quiet", is_flag=True, help="no progress bar")
@click.option("--nproc-per-node", type=int, default=None,
              help="data-parallel processes on this node (DDP: gloo on CPU, NCCL with one GPU each)")
@click.option("--nnodes", type=int, default=1, show_default=True, help="machines in a DDP run")
@click.option("--node-rank", type=int, default=0, show_default=True, help="this machine's index, 0..nnodes-1")
@click.option("--rdzv-endpoint", default=None, help="HOST:PORT of node 0 (multi-node DDP)")
def train_command(family: str, arch: str, latent_dim: int, data: str, epochs: int, batch_size: int, lr: float,
                  lr_schedule: str, seed: int, device: str, limit: int | None, classes: str | None, val_fraction: float,
                  likelihood: str, beta: float | None, lam: float | None, noise: str | None,
                  noise_level: float | None, sigma: float | None, hidden: str | None, channels: str | None,
                  dense: int | None, out: str | None, quiet: bool, nproc_per_node: int | None, nnodes: int,
                  node_rank: int, rdzv_endpoint: str | None) -> None:
    """Train an autoencoder and write its checkpoint (weights + model card)."""

    given: dict[str, Any] = {
        "beta": beta, "lam": lam, "noise": noise, "noise_level": noise_level, "sigma": sigma,
        "hidden": _int_list("--hidden", hidden), "channels": _int_list("--channels", channels), "dense": dense,
    }
    hparams = {k: v for k, v in given.items() if v is not None}
    kwargs: dict[str, Any] = dict(family=family, arch=arch, latent_dim=latent_dim, data=data, epochs=epochs, batch_size=batch_size,
                  lr=lr, seed=seed, device=device, limit=limit, classes=_class_list(classes),
                  val_fraction=val_fraction, likelihood=likelihood, hparams=hparams, out=out or f"{family}.pt",
                  progress=not quiet, lr_schedule=lr_schedule)
    from ..distributed import ddp

    if nproc_per_node is not None or nnodes != 1 or rdzv_endpoint:
        res = ddp.launch(kwargs, nproc_per_node=1 if nproc_per_node is None else nproc_per_node, nnodes=nnodes,
                         node_rank=node_rank, rdzv_endpoint=rdzv_endpoint)
        click.echo(summary(res.card, res.path) + f" [{res.world_size} processes]" if res.card is not None
                   else f"node {node_rank} done; the node with rank 0 wrote the checkpoint")
        return
    if ddp.launched_by_torchrun():  # started by torchrun: this process is one rank
        done = ddp.run_worker(kwargs)
        if done is not None:
            from ..card import ModelCard

            click.echo(summary(ModelCard.from_dict(done["card"]), done["path"]))
        return
    from ..train import train

    result = train(**kwargs)
    click.echo(summary(result.card, result.path))


def summary(card: Any, path: Any) -> str:
    """One line: where the checkpoint went and its test metrics."""
    m = card.metrics
    parts = [f"test_mse={m['test_mse']:.5f}", f"test_psnr={m['test_psnr']:.2f}dB"]
    if "test_elbo" in m:
        parts.append(f"test_elbo={m['test_elbo']:.2f}nats")
    parts.append(f"anomaly_threshold={card.get_float('anomaly.threshold'):.5f}")
    where = card.get("train.eval_split")
    return (f"saved {path}: {card.family}/{card.arch} latent {card.latent_dim} on {card.dataset} "
            f"({card.get('train.epochs')} epochs, {float(card.get('train.seconds')):.1f}s); "
            f"{where}: " + " ".join(parts))


COMMANDS = {"train": train_command}
