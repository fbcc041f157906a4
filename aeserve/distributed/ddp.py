"""Data-parallel training: ``aeserve.train.train`` in N processes, launched like torchrun.

    from aeserve.distributed import ddp
    result = ddp.launch({"family": "ae", "data": "mnist", "epochs": 2, "out": "ae.pt"}, nproc_per_node=2)
    result.card.metrics["test_mse"], result.path, result.world_size

    aeserve train --family ae --epochs 2 --out ae.pt --nproc-per-node 2
    torchrun --nproc-per-node 2 -m aeserve.train --family ae --epochs 2 --out ae.pt
    # two machines: the same command on each, --nnodes 2 --node-rank 0|1 --rdzv-endpoint HOST0:29500

Each rank is a ``DistributedDataParallel`` process (gloo on CPU, NCCL on CUDA, one GPU per
local rank). Data order: every rank draws the SAME seeded permutation the one-process
trainer draws and takes its contiguous share of each global batch of ``batch_size``
(a DistributedSampler that never pads or drops), and its loss is weighted by its share,
so the gradients DDP averages are exactly the gradient of the global batch mean. Hence N
processes give the one-process weights up to the order of float additions (families
with a deterministic objective: ae, sparse, contractive; vae and dae draw their noise
per rank, so they match in distribution, not bit for bit). Training and validation
losses are summed over ranks; only rank 0 shows a progress bar, evaluates the model and
writes the checkpoint (atomically, ``aeserve.checkpoint.save``). A rank that dies stops
every other rank (torch elastic, no restarts) and ``launch`` raises DistributedError
naming the rank; the checkpoint is either complete or absent.
"""

from __future__ import annotations

import inspect
import logging
import os
import signal
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from .. import errors
from ..card import ModelCard
from ..checks import check_int
from ..errors import AeserveError, ConfigError, DistributedError
from ..train import Ranks, train, validate

__all__ = ["DDPRanks", "DistributedResult", "launch", "run_worker", "check_nproc", "launched_by_torchrun"]

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass
class DistributedResult:
    """What ``launch`` returns on the node holding rank 0 (elsewhere card is None)."""

    card: ModelCard | None
    history: list[dict[str, float]] = field(default_factory=list)
    path: Path | None = None
    world_size: int = 1


class _Loss(torch.nn.Module):
    """``forward(x) = model.loss(x)`` so that DDP sees the training objective as forward."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        return self.model.loss(x)


class DDPRanks(Ranks):
    """The ``aeserve.train.Ranks`` of a process in an initialised default process group."""

    def __init__(self, device: torch.device):
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", self.world_size))
        self.is_main = self.rank == 0
        self.device = device

    def threads(self, available: int) -> int:
        return max(1, available // self.local_world_size)

    def wrap(self, model: Any) -> Any:
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(_Loss(model), device_ids=ids)

    def shard(self, batch: torch.Tensor) -> tuple[torch.Tensor, float, int]:
        mine = torch.tensor_split(batch, self.world_size)[self.rank]
        if mine.shape[0] == 0:  # a last batch smaller than the world: take part, contribute nothing
            return batch[:1], 0.0, 0
        return mine, mine.shape[0] * self.world_size / batch.shape[0], int(mine.shape[0])

    def reduce(self, sums: dict[str, float], seen: int) -> tuple[dict[str, float], int]:
        keys = sorted(sums)
        t = torch.tensor([float(seen), *(sums[k] for k in keys)], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return dict(zip(keys, t[1:].tolist())), int(t[0].item())


def launched_by_torchrun() -> bool:
    """True inside a process started by torchrun / torch elastic (its environment is set)."""
    return all(k in os.environ for k in TORCHRUN_ENV)


def _available(device: str) -> tuple[int, str]:
    if torch.device(device).type == "cuda":
        return torch.cuda.device_count(), "CUDA device(s)"
    try:
        return len(os.sched_getaffinity(0)), "CPU core(s) available to this process"
    except AttributeError:
        return os.cpu_count() or 1, "CPU core(s)"


def check_nproc(nproc_per_node: Any, device: str = "cpu") -> int:
    """``nproc_per_node`` as an int; ConfigError if below 1 or above the CPUs/GPUs of this node."""
    check_int(nproc_per_node, "--nproc-per-node", minimum=1, error=ConfigError)
    have, what = _available(device)
    if nproc_per_node > have:
        raise ConfigError(f"--nproc-per-node {nproc_per_node} is more processes than this node has "
                          f"{what} ({have}) for device {device!r}; use at most {have}")
    return nproc_per_node


def _bound(train_kwargs: dict[str, Any]) -> dict[str, Any]:
    """All of ``train``'s arguments (defaults filled in); ConfigError for unknown names."""
    sig = inspect.signature(train)
    unknown = sorted(set(train_kwargs) - set(sig.parameters) | ({"ranks"} & set(train_kwargs)))
    if unknown:
        raise ConfigError(f"unknown training argument(s) {', '.join(unknown)}; "
                          f"expected names of aeserve.train.train's parameters")
    bound = sig.bind_partial(**train_kwargs)
    bound.apply_defaults()
    return {k: v for k, v in bound.arguments.items() if k != "ranks"}


def run_worker(train_kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """Body of one rank (torchrun/elastic environment set): init the process group, train, clean up.

    Returns ``{"card", "history", "path"}`` on rank 0 and None elsewhere. A CUDA run uses
    ``cuda:<LOCAL_RANK>`` and NCCL; a CPU run gloo. Raises what ``train`` raises.
    """
    kwargs = _bound(train_kwargs)
    on_cuda = torch.device(kwargs["device"]).type == "cuda"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if on_cuda:
        kwargs["device"] = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    device = torch.device(kwargs["device"])
    dist.init_process_group("nccl" if on_cuda else "gloo")
    try:
        result = train(**kwargs, ranks=DDPRanks(device))
    finally:
        dist.destroy_process_group()
    if dist_rank_is_zero():
        return {"card": result.card.to_dict(), "history": result.history,
                "path": None if result.path is None else str(result.path)}
    return None


def dist_rank_is_zero() -> bool:
    """Whether this process is global rank 0 (from the torchrun environment)."""
    return os.environ.get("RANK", "0") == "0"


def _endpoint(rdzv_endpoint: str | None, nnodes: int, node_rank: int) -> tuple[str, str, dict[str, Any]]:
    """(backend, endpoint, configs) of the rendezvous, as torchrun chooses them."""
    check_int(nnodes, "--nnodes", minimum=1, error=ConfigError)
    check_int(node_rank, "--node-rank", minimum=0, maximum=nnodes - 1, detail=f" for --nnodes {nnodes}",
              error=ConfigError)
    if nnodes == 1 and not rdzv_endpoint:
        return "c10d", "127.0.0.1:0", {}  # like torchrun --standalone, loopback only
    host, _, port = (rdzv_endpoint or "").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--rdzv-endpoint must be HOST:PORT of the node with --node-rank 0 "
                          f"(e.g. 10.0.0.1:29500), got {rdzv_endpoint!r}")
    return "static", str(rdzv_endpoint), {"rank": node_rank}


def _signal_handlers() -> dict[int, Any]:
    """The current handlers of the signals torch elastic's agent takes over (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    names = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
    return {getattr(signal, n): signal.getsignal(getattr(signal, n)) for n in names if hasattr(signal, n)}


def _failure(e: Exception) -> AeserveError:
    """A typed error from torch elastic's ChildFailedError: the first failed rank and why."""
    failures = getattr(e, "failures", {}) or {}
    if not failures:
        return DistributedError(f"distributed training failed: {e}")
    rank, f = min(failures.items())
    message = getattr(f, "message", "") or ""
    if isinstance(message, dict):  # an error file: {"message": "Type: text", "extraInfo": {...}}
        message = message.get("message", "")
    message = " ".join(str(message).split())
    kind, _, text = message.partition(": ")
    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, AeserveError) and text:
        return cls(f"{text} (rank {rank})")
    code = getattr(f, "exitcode", None)
    if code is None or code >= 0:
        why = f"exit code {code}"
    else:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else "?"
        why = f"killed by signal {-code} ({name})"
    if message and not message.startswith(("To enable traceback", "Signal ")):
        why = f"{why}: {message}"
    return DistributedError(f"rank {rank} (pid {getattr(f, 'pid', '?')}) died: {why}; every rank was stopped "
                            "and no checkpoint was written")


def launch(train_kwargs: dict[str, Any], *, nproc_per_node: int, nnodes: int = 1, node_rank: int = 0,
           rdzv_endpoint: str | None = None) -> DistributedResult:
    """Run ``train(**train_kwargs)`` as ``nproc_per_node`` DDP processes on this node (of ``nnodes``).

    Everything that can be checked without data is checked first (the training arguments,
    ``nproc_per_node`` against this node's CPUs or GPUs, the rendezvous), then torch
    elastic starts the ranks (spawn, no restarts). Returns a DistributedResult (rank 0's
    card, history and checkpoint path; card None on other nodes). Raises ConfigError
    before any process starts; the typed error a rank raised (DataError, ...), or
    DistributedError when a rank died otherwise.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    kwargs = _bound(train_kwargs)
    validate(kwargs["family"], kwargs["arch"], kwargs["latent_dim"], epochs=kwargs["epochs"],
             batch_size=kwargs["batch_size"], lr=kwargs["lr"], seed=kwargs["seed"], limit=kwargs["limit"],
             classes=kwargs["classes"], val_fraction=kwargs["val_fraction"], likelihood=kwargs["likelihood"],
             hparams=kwargs["hparams"], device=kwargs["device"], lr_schedule=kwargs["lr_schedule"])
    nproc = check_nproc(nproc_per_node, kwargs["device"])
    backend, endpoint, configs = _endpoint(rdzv_endpoint, nnodes, node_rank)
    config = LaunchConfig(min_nodes=nnodes, max_nodes=nnodes, nproc_per_node=nproc, run_id=uuid.uuid4().hex,
                          rdzv_backend=backend, rdzv_endpoint=endpoint, rdzv_configs=configs, max_restarts=0,
                          monitor_interval=0.1, start_method="spawn",
                          local_addr="127.0.0.1" if nnodes == 1 else None)
    omp_unset = "OMP_NUM_THREADS" not in os.environ
    if omp_unset:  # for the spawned ranks only, like torchrun: ranks split the cores, torch_threads() adds more
        os.environ["OMP_NUM_THREADS"] = "1"
    quiet = logging.getLogger("torch.distributed.elastic")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    handlers = _signal_handlers()  # the elastic agent installs its own; the caller gets theirs back
    try:
        outputs = elastic_launch(config, run_worker)(kwargs)
    except ChildFailedError as e:
        raise _failure(e) from None
    finally:
        quiet.setLevel(level)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        if omp_unset:  # the caller's environment as it was
            os.environ.pop("OMP_NUM_THREADS", None)
    first = outputs.get(0) if node_rank == 0 else None
    if not first:
        return DistributedResult(card=None, world_size=nnodes * nproc)
    return DistributedResult(card=ModelCard.from_dict(first["card"]), history=first["history"],
                             path=None if first["path"] is None else Path(first["path"]),
                             world_size=nnodes * nproc)
