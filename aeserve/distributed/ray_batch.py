"""Batch jobs on Ray Data: Client operations over many images, by a pool of actors.

    from aeserve.distributed import ray_batch
    ds = ray_batch.read_dataset("images/")          # ray.data.Dataset: row_id, image
    scored = ray_batch.map_dataset(ds, "score", url="grpc://triton:8001", workers=4)
    scored.write_parquet("s3://bucket/scores")      # any Ray sink; columns row_id, score

Each actor holds ONE ``aeserve.Client``: embedded ONNX Runtime over the repository, or a
Triton URL, so that the actors' requests meet in Triton's dynamic batcher. Operations
(``OPS``) and the columns they write next to ``row_id`` (string, stable, see
``aeserve.distributed.sources``): ``encode`` -> ``code`` (float32 list, posterior mean),
``features`` -> ``features`` (``Client.features``), ``reconstruct`` -> ``x_hat`` (float32
list of C*H*W values), ``score`` -> ``score`` (float64, ``Client.anomaly_score``),
``compress`` -> ``payload`` (bytes; one self-contained ``Client.compress`` payload per image).
Several operations in one job share the actors and the reading; ``options`` maps an
operation to the keyword arguments of its Client method, e.g. ``{"score": {"method": "elbo"}}``.

The file-to-Parquet job built on the same actors is ``aeserve.distributed.batch_job``.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..checks import check_int
from ..errors import ConfigError, ServerUnavailableError
from .sources import load_chunk, plan_input

__all__ = ["OPS", "ClientWorker", "check_ops", "check_workers", "compute", "import_ray", "connect_ray", "check_capacity",
           "remote_args", "map_dataset", "read_dataset"]

OPS = ("encode", "reconstruct", "score", "compress", "features")


def check_ops(ops: Any, options: Mapping[str, Mapping[str, Any]] | None) -> tuple[tuple[str, ...], dict]:
    """(operations, {op: kwargs}); ConfigError for an unknown or repeated operation or stray options."""
    ops = (ops,) if isinstance(ops, str) else tuple(ops)
    bad = [op for op in ops if op not in OPS]
    if not ops or bad or len(set(ops)) != len(ops):
        raise ConfigError(f"batch operations must be distinct names from {', '.join(OPS)}; got {list(ops)}")
    options = {k: dict(v) for k, v in (options or {}).items()}
    stray = sorted(set(options) - set(ops))
    if stray:
        raise ConfigError(f"options given for operation(s) {stray} that this job does not run ({list(ops)})")
    return ops, options


def check_workers(workers: Any) -> int:
    """``workers`` as an int >= 1; ConfigError otherwise."""
    return check_int(workers, "workers", minimum=1, error=ConfigError)


def compute(client: Any, ops: Sequence[str], x: np.ndarray, options: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The output columns of ``ops`` for images ``x`` with one Client (see module doc)."""
    out: dict[str, Any] = {}
    for op in ops:
        out.update(_compute_one(client, op, x, options.get(op, {})))
    return out


def _compute_one(client: Any, op: str, x: np.ndarray, options: Mapping[str, Any]) -> dict[str, Any]:
    if op == "score":
        return {"score": client.anomaly_score(x, **options).astype(np.float64)}
    if op == "compress":
        return {"payload": np.array(client.compress_each(x, **options), dtype=object)}
    if op == "encode":
        return {"code": client.encode(x, **options)}
    if op == "reconstruct":
        y = client.reconstruct(x, **options)
        return {"x_hat": y.reshape(len(y), -1)}
    if not hasattr(client, "features"):
        raise ConfigError("operation 'features' needs Client.features, which this aeserve does not have; "
                          "use 'encode' for latent codes")
    f = client.features(x, **options)
    return {"features": f.reshape(len(f), -1)}


class ClientWorker:
    """A Ray Data actor: one ``aeserve.Client`` applying ``op`` to batches ``{row_id, image}``."""

    def __init__(self, ops: Sequence[str], url: str | None, model: str | None, repository: str | None,
                 options: Mapping[str, Mapping[str, Any]], image_column: str = "image", id_column: str = "row_id"):
        from .. import Client

        self.ops, self.options = tuple(ops), options
        self.image_column, self.id_column = image_column, id_column
        self.client = Client(url, model, repository=repository)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        out = compute(self.client, self.ops, np.asarray(batch[self.image_column]), self.options)
        return {self.id_column: batch[self.id_column], **out}


def import_ray() -> Any:
    """The ``ray`` module with Ray Data loaded; ConfigError naming the extra if it is not installed."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise ConfigError("Ray batch jobs need the `distributed` extra: pip install 'aeserve[distributed]' "
                          f"(ray[data], pyarrow); {e}") from None
    return ray


def connect_ray(address: str | None, *, num_cpus: int | None = None) -> bool:
    """Make sure Ray is initialised; True if this call started a local instance.

    ``address`` None: the running Ray if any, else a new local one (``num_cpus``);
    ``"auto"``: the cluster this machine belongs to; ``"host:port"``/``"ray://host:port"``:
    that cluster, whose port is probed first. Raises ServerUnavailableError, and ConfigError
    when a local Ray would need more than this machine's CPUs.
    """
    ray = import_ray()
    if address is None and ray.is_initialized():
        return False
    if address is None and num_cpus is not None and num_cpus > _local_cpus():
        raise ConfigError(f"{num_cpus} workers need {num_cpus} CPUs but this machine has {_local_cpus()}; "
                          f"use --workers {_local_cpus()} or fewer, or --address of a larger Ray cluster")
    if address not in (None, "auto"):
        host, _, port = str(address).removeprefix("ray://").rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"Ray address must be 'auto', HOST:PORT or ray://HOST:PORT, got {address!r}")
        try:
            socket.create_connection((host, int(port)), timeout=3).close()
        except OSError as e:
            raise ServerUnavailableError(f"cannot reach the Ray cluster at {address}: {e.strerror or e}; "
                                         "start one with `ray start --head` or pass --address auto") from None
    try:
        ray.init(address=address, num_cpus=num_cpus if address is None else None, include_dashboard=False,
                 log_to_driver=False, configure_logging=False, ignore_reinit_error=True)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ServerUnavailableError(f"cannot connect to Ray at {address!r}: {' '.join(str(e).split())[:200]}") from None
    return address is None


def _local_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def check_capacity(workers: int, num_cpus: float) -> None:
    import ray

    have = float(ray.cluster_resources().get("CPU", 0))
    if workers * num_cpus > have:
        raise ConfigError(f"{workers} workers x {num_cpus} CPU each exceed the Ray cluster's {have:g} CPUs; "
                          f"use --workers {max(1, int(have // num_cpus))} or fewer")


def remote_args(workers: int, num_cpus: float) -> dict[str, Any]:
    import ray.data

    return {"compute": ray.data.ActorPoolStrategy(size=workers), "num_cpus": num_cpus, "batch_format": "numpy"}


def read_dataset(path: str | os.PathLike[str], *, chunk_rows: int = 1024, column: str = "image") -> Any:
    """A ``ray.data.Dataset`` of ``{row_id: str, image: float32 (C, H, W)}`` over ``path``.

    Planned on the driver (DataError before any work: nothing readable, mixed shapes),
    read lazily chunk by chunk by Ray tasks.
    """
    import ray.data

    plan = plan_input(path, chunk_rows=chunk_rows, column=column)

    def load(batch: dict[str, np.ndarray]) -> dict[str, Any]:
        from ..data.formats import to_unit_float

        ids, xs = [], []
        for index in batch["chunk"]:
            i, x = load_chunk(plan, plan.chunks[int(index)])
            ids += i
            xs.append(to_unit_float(x))
        return {"row_id": np.asarray(ids, dtype=object), "image": np.concatenate(xs)}

    items = [{"chunk": c.index} for c in plan.chunks]
    return ray.data.from_items(items, override_num_blocks=len(items)).map_batches(load, batch_size=1,
                                                                                  batch_format="numpy")


def map_dataset(ds: Any, ops: str | Sequence[str], *, url: str | None = None, model: str | None = None,
                repository: str | os.PathLike[str] | None = None, workers: int = 1, batch_size: int = 256,
                num_cpus: float = 1.0, image_column: str = "image", id_column: str = "row_id",
                options: Mapping[str, Mapping[str, Any]] | None = None) -> Any:
    """``ds`` (columns ``id_column``, ``image_column``) -> a lazy Dataset of ``id_column`` + the ops' columns.

    ``workers`` actors, each with one Client (``url``/``model``/``repository`` as for
    ``aeserve.Client``), ``batch_size`` rows per call, ``options`` per operation (e.g.
    ``{"score": {"method": "elbo"}, "compress": {"bits": 8}}``). Raises ConfigError.
    """
    ops, options = check_ops(ops, options)
    workers = check_workers(workers)
    repo = None if repository is None else str(Path(repository).resolve())
    return ds.map_batches(ClientWorker, batch_size=batch_size, **remote_args(workers, num_cpus),
                          fn_constructor_kwargs={"ops": ops, "url": url, "model": model, "repository": repo,
                                                 "options": options, "image_column": image_column,
                                                 "id_column": id_column})


