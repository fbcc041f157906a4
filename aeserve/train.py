"""Training: one function from (family, arch, latent, data) to a trained model with a full card.

    from aeserve.train import train
    result = train("vae", "conv", 16, "mnist", epochs=5, out="vae.pt")
    result.model                      # Autoencoder, eval mode
    result.card.metrics["test_mse"]   # test metrics, anomaly calibration, latent stats, provenance
    result.history[-1]["val_loss"]    # one dict per epoch

Everything is validated before any data is loaded or any file is written (unknown
family/arch/dataset, latent < 1, epochs < 1, cuda requested but absent, unknown
hyper-parameters -> ConfigError naming what is accepted; data problems -> DataError).
On CPU a seed gives bit-identical weights: the model is initialised and trained under
``torch.manual_seed(seed)`` and batches are drawn from a seeded permutation of in-memory
tensors. The caller's global RNG and torch thread count are restored afterwards
(:func:`aeserve.torch_state.restores_torch_state`).
With ``out`` the checkpoint is written atomically at the very end; an error or Ctrl-C
before that leaves no file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from . import checkpoint
from . import post_training as ev
from .card import LIKELIHOODS, ModelCard
from .checks import check_int
from .data import resolve_classes
from .errors import AeserveError, ConfigError, SplitNotFoundError
from .models import REGISTRY, Autoencoder, build_model
from .models.arch import ARCH_HPARAMS, ARCHITECTURES
from .progress import progress_bar
from .torch_state import restores_torch_state

COMMON_HPARAMS = ("sigma",)  # gaussian likelihood std, read by every family
LR_SCHEDULES = ("constant", "cosine")


@dataclass
class TrainResult:
    """What ``train`` returns: the trained model (eval mode), its card, one dict per epoch."""

    model: Autoencoder
    card: ModelCard
    history: list[dict[str, float]] = field(default_factory=list)
    path: Path | None = None


def accepted_hparams(family: str, arch: str) -> tuple[str, ...]:
    """Hyper-parameter names ``train`` accepts for this family and architecture."""
    return (*ARCH_HPARAMS.get(arch, ()), *COMMON_HPARAMS, *REGISTRY[family].defaults)


def resolve_device(device: str | torch.device) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"cuda:N"`` -> torch.device; ConfigError if it is not usable here."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {device!r}; expected 'cpu', 'cuda' or 'cuda:N'") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} requested but CUDA is not available here; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r} does not exist; this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type != "cpu":
        raise ConfigError(f"unsupported device {device!r}; expected 'cpu', 'cuda' or 'cuda:N'")
    return dev


def validate(family: str, arch: str, latent_dim: int, *, epochs: int, batch_size: int, lr: float,
             seed: int, limit: int | None, classes: Sequence[int] | None, val_fraction: float,
             likelihood: str, hparams: dict[str, Any] | None, device: str,
             lr_schedule: str = "constant") -> torch.device:
    """Check every training argument that can be checked without data. Returns the device."""
    if family not in REGISTRY:
        raise ConfigError(f"unknown family {family!r}; expected one of {', '.join(sorted(REGISTRY))}")
    if arch not in ARCHITECTURES:
        raise ConfigError(f"unknown arch {arch!r}; expected one of {', '.join(ARCHITECTURES)}")
    if likelihood not in LIKELIHOODS:
        raise ConfigError(f"unknown likelihood {likelihood!r}; expected one of {', '.join(LIKELIHOODS)}")
    check_int(latent_dim, "latent size", minimum=1, error=ConfigError)
    check_int(epochs, "epochs", minimum=1, error=ConfigError)
    check_int(batch_size, "batch size", minimum=1, error=ConfigError)
    check_int(seed, "seed", minimum=0, error=ConfigError)
    if limit is not None:
        check_int(limit, "limit", minimum=1, error=ConfigError)
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ConfigError(f"learning rate must be a finite number > 0, got {lr!r}")
    if lr_schedule not in LR_SCHEDULES:
        raise ConfigError(f"unknown lr schedule {lr_schedule!r}; expected one of {', '.join(LR_SCHEDULES)}")
    if not isinstance(val_fraction, (int, float)) or not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"validation fraction must be in (0, 1), got {val_fraction!r}")
    if classes is not None:
        if isinstance(classes, (str, bytes)) or not isinstance(classes, Iterable):
            raise ConfigError(f"classes must be a list of integer labels or class names, got {classes!r}")
        classes = list(classes)
        if not classes:
            raise ConfigError("class filter is empty; give at least one label, e.g. classes=[0]")
        for c in (c for c in classes if not (isinstance(c, str) and c)):  # names are checked against the data
            check_int(c, "class label", minimum=0, error=ConfigError)
    if hparams is not None and not isinstance(hparams, dict):
        raise ConfigError(f"hparams must be a dict, got {type(hparams).__name__}")
    accepted = accepted_hparams(family, arch)
    unknown = sorted(set(hparams or {}) - set(accepted))
    if unknown:
        raise ConfigError(f"hyper-parameter(s) {', '.join(unknown)} do not apply to family {family!r} with "
                          f"arch {arch!r}; accepted: {', '.join(accepted)}")
    return resolve_device(device)


def _load_data(data: Any, limit: int | None, classes: Sequence[int] | None, val_fraction: float, seed: int):
    """(train, val, eval_set, eval_split_name) from ``aeserve.data``."""
    from .data import load_dataset, split_validation

    full = load_dataset(data, "train", limit=limit, classes=classes)
    train_ds, val_ds = split_validation(full, fraction=val_fraction, seed=seed)
    try:
        test_ds = load_dataset(data, "test", limit=limit, classes=classes)
    except SplitNotFoundError:
        test_ds = None
    if test_ds is not None and len(test_ds.x) > 0:
        return train_ds, val_ds, test_ds, "test"
    return train_ds, val_ds, val_ds, "validation"


def _tensor(a: Any, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(a, dtype=np.float32)).to(device)


def torch_threads() -> int:
    """Threads for torch's CPU kernels: ``$AESERVE_THREADS`` if set, else every core this
    process may use minus the cores other processes keep busy (1-minute load average).

    On a shared 2-core machine an oversubscribed, spinning OpenMP pool is catastrophic
    (measured: one full-MNIST MLP-VAE epoch while other processes ran: 2 threads ~100 s,
    1 thread 3.6-6.7 s), so threads are only used where a core is actually free. The CLI
    also sets ``OMP_WAIT_POLICY=PASSIVE`` before torch loads, which removes most of the
    penalty if load arrives mid-run (same epoch, 2 passive threads under load: 9.4 s).
    """
    env = os.environ.get("AESERVE_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ConfigError(f"AESERVE_THREADS must be a positive integer, got {env!r}") from None
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:
        n = os.cpu_count() or 1
    try:
        busy = int(os.getloadavg()[0] + 0.5)
    except (AttributeError, OSError):
        busy = 0
    return max(1, min(n, n - busy))


def _progress_bar(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    return progress_bar(total=total, desc=desc, unit="batch", leave=True)


class Ranks:
    """How the processes of one training run share the work. This default is one process.

    ``aeserve.distributed.ddp`` subclasses it for DistributedDataParallel: every rank draws
    the same seeded permutation, takes its share of each global batch (``shard``), trains
    through a DDP wrapper (``wrap``) and sums its epoch statistics with the others
    (``reduce``); only the main rank shows progress, evaluates and writes the checkpoint.
    """

    rank, world_size, is_main = 0, 1, True

    def threads(self, available: int) -> int:
        """Torch CPU threads for this process, given the threads the machine can spare."""
        return available

    def wrap(self, model: Autoencoder) -> Any:
        """The callable ``x -> (loss, parts)`` that training steps call."""
        return model.loss

    def shard(self, batch: torch.Tensor) -> tuple[torch.Tensor, float, int]:
        """Indices of one global batch -> (this rank's indices, loss weight, samples counted)."""
        return batch, 1.0, int(batch.shape[0])

    def reduce(self, sums: dict[str, float], seen: int) -> tuple[dict[str, float], int]:
        """Sample-weighted sums and counts of this rank -> those of the whole run."""
        return sums, seen


def _run_epoch(model: Autoencoder, x: torch.Tensor, batch_size: int, gen: torch.Generator,
               opt: torch.optim.Optimizer | None, bar, sched: Any = None, ranks: Ranks | None = None,
               loss_fn: Any = None) -> dict[str, float]:
    """One pass over ``x`` in seeded random order; trains when ``opt`` is given. Returns mean loss parts.

    Every rank draws the same permutation from ``gen``; ``ranks`` picks this process's part
    of each batch (all of it in one process) and sums the statistics over processes.
    """
    ranks = ranks or Ranks()
    loss_fn = loss_fn or model.loss
    model.train()
    n = x.shape[0]
    order = torch.randperm(n, generator=gen).to(x.device)
    sums: dict[str, float] = {}
    seen = 0
    ctx = contextlib.nullcontext() if opt is not None else torch.no_grad()
    with ctx:
        for step, i in enumerate(range(0, n, batch_size)):
            idx, weight, m = ranks.shard(order[i:i + batch_size])
            xb = x[idx]
            loss, parts = loss_fn(xb)
            if opt is not None:
                opt.zero_grad(set_to_none=True)
                (loss if weight == 1.0 else loss * weight).backward()
                opt.step()
                if sched is not None:
                    sched.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise ConfigError(f"training diverged (loss {value}) at batch {step}; try a lower learning rate")
            seen += m
            for k, v in {"loss": value, **parts}.items():
                sums[k] = sums.get(k, 0.0) + v * m
            if bar is not None:
                bar.update(1)
                if step % 10 == 0:
                    bar.set_postfix(loss=f"{sums['loss'] / max(seen, 1):.4g}", refresh=False)
    sums, seen = ranks.reduce(sums, seen)
    return {k: v / seen for k, v in sums.items()}


@restores_torch_state
def train(family: str, arch: str = "mlp", latent_dim: int = 16, data: Any = "mnist", *,
          epochs: int = 10, batch_size: int = 128, lr: float = 1e-3, seed: int = 0,
          device: str = "cpu", limit: int | None = None, classes: Sequence[int] | None = None,
          val_fraction: float = 0.1, likelihood: str = "bernoulli", hparams: dict[str, Any] | None = None,
          out: str | os.PathLike | None = None, progress: bool = True,
          lr_schedule: str = "constant", ranks: Ranks | None = None) -> TrainResult:
    """Train an autoencoder and return ``TrainResult(model, card, history, path)``.

    ``data`` is anything ``aeserve.data.load_dataset`` accepts ("mnist", "fashion-mnist",
    a path). Adam at ``lr``, constant or (``lr_schedule="cosine"``) decayed per step
    along a half cosine to 0 at the last step. Per epoch the validation loss (the same
    objective on the held-out ``val_fraction`` of the training split, no updates) is
    recorded in ``history`` and shown with the progress bar. Afterwards the card gets
    ``metrics.test_mse``, ``metrics.test_psnr``, for a VAE ``metrics.test_elbo`` (see ``post_training.elbo``:
    one reparameterised sample per image, seeded), for a DAE ``metrics.test_noisy_mse``
    and ``metrics.test_denoise_mse`` (its own noise, seeded), measured on the
    test split (the validation split if the data has none; ``train.eval_split`` says
    which), the anomaly calibration on the validation split, latent statistics on the
    training split, the provenance ``train.*`` and ``class_names`` when the data names
    its classes (e.g. PNG folders ``cat/``, ``dog/``). With ``out`` the checkpoint is saved
    atomically. ``ranks`` (see ``Ranks``) is how the processes of a distributed run
    cooperate; leave it None for one process (``aeserve.distributed.ddp`` sets it); only
    its main rank evaluates and writes ``out``. Raises ConfigError, DataError, CheckpointError.
    """
    classes = list(classes) if classes is not None and not isinstance(classes, (str, bytes)) else classes
    dev = validate(family, arch, latent_dim, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                   limit=limit, classes=classes, val_fraction=val_fraction, likelihood=likelihood,
                   hparams=hparams, device=device, lr_schedule=lr_schedule)
    ranks = ranks or Ranks()
    torch.set_num_threads(ranks.threads(torch_threads()))
    train_ds, val_ds, eval_ds, eval_split = _load_data(data, limit, classes, val_fraction, seed)
    if classes is not None:  # names -> the labels they stand for, as the card records them
        classes = resolve_classes(classes, train_ds.class_names, train_ds.name)
    try:
        card = ModelCard(family, arch, tuple(train_ds.input_shape), int(latent_dim), likelihood, train_ds.name,
                         {"hparams": json.dumps(hparams or {})})
    except AeserveError as e:
        raise ConfigError(str(e)) from e

    fork_devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        try:
            model = build_model(card).to(dev)
        except (TypeError, ValueError) as e:
            if isinstance(e, AeserveError):
                raise
            raise ConfigError(f"invalid hyper-parameters {hparams}: {e}") from e
        x_train, x_val = _tensor(train_ds.x, dev), _tensor(val_ds.x, dev)
        loss_fn = ranks.wrap(model)
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        history: list[dict[str, float]] = []
        started = time.perf_counter()
        steps = math.ceil(x_train.shape[0] / batch_size)
        sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps)
                 if lr_schedule == "cosine" else None)
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            bar = _progress_bar(steps, f"epoch {epoch}/{epochs}", progress and ranks.is_main)
            try:
                tr = _run_epoch(model, x_train, batch_size, gen, opt, bar, sched, ranks, loss_fn)
                va = _run_epoch(model, x_val, max(batch_size, 1024), gen, None, None, ranks)
                if bar is not None:
                    bar.set_postfix(loss=f"{tr['loss']:.4g}", val_loss=f"{va['loss']:.4g}", refresh=True)
            finally:
                if bar is not None:
                    bar.close()
            history.append({"epoch": epoch, "seconds": time.perf_counter() - t0,
                            **{f"train_{k}": v for k, v in tr.items()},
                            **{f"val_{k}": v for k, v in va.items()}})
        train_seconds = time.perf_counter() - started

        model.eval()
        if not ranks.is_main:
            return TrainResult(model=model, card=card, history=history, path=None)
        x_eval = x_val if eval_split == "validation" else _tensor(eval_ds.x, dev)
        card = model.card.with_extra(**{
            **ev.reconstruction_metrics(model, x_eval),
            **ev.elbo_metrics(model, x_eval, seed=seed),
            **ev.denoising_metrics(model, x_eval, seed=seed),
            "metrics.val_loss": history[-1]["val_loss"],
            **ev.anomaly_calibration(model, x_val),
            **ev.latent_stats(model, x_train),
            "train.epochs": int(epochs),
            "train.seed": int(seed),
            "train.batch_size": int(batch_size),
            "train.lr": float(lr),
            "train.lr_schedule": lr_schedule,
            "train.limit": "null" if limit is None else str(int(limit)),
            "train.classes": "null" if classes is None else [int(c) for c in classes],
            "train.val_fraction": float(val_fraction),
            "train.eval_split": eval_split,
            "train.samples": int(x_train.shape[0]),
            "train.world_size": int(ranks.world_size),
            "train.device": str(dev),
            "train.seconds": round(train_seconds, 3),
            "class_names": None if train_ds.class_names is None else list(train_ds.class_names),
        })
    model.card = card
    path = checkpoint.save(model, out) if out is not None else None
    return TrainResult(model=model, card=card, history=history, path=path)


if __name__ == "__main__":  # torchrun --nproc-per-node N -m aeserve.train --family ae ...
    from aeserve.cli import main

    main(["train", *sys.argv[1:]])
