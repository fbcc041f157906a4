"""Resumable batch jobs from files to Parquet on Ray: ``aeserve batch`` as a library call.

    from aeserve.distributed.batch_job import run_batch
    result = run_batch(["score", "compress"], "mnist_test.npy", "out.parquet", workers=2)
    result.rows, result.output                     # 10000, Path("out.parquet")  (a Parquet dataset)

    aeserve batch score compress --input mnist_test.npy --output out.parquet --workers 2 [--url grpc://...]

Operations and columns are those of ``aeserve.distributed.ray_batch`` (each actor holds one
``aeserve.Client``); the input is planned by ``aeserve.distributed.sources``.

``run_batch`` is resumable and idempotent: the input is planned into numbered chunks; an
actor writes chunk k as ``part-<k>.parquet`` (temp file + rename) inside
``<output>.partial/``, so a retried chunk (after an actor dies, Ray restarts it and retries
the task) replaces its own file and no row is ever written twice. A rerun with the same
arguments and unchanged input skips the chunks already written; when all are present the
directory is checked (every chunk once, row counts) and renamed to ``output``. Everything
that can be checked is checked before any actor starts (operation, workers, existing
output, the model/URL, the input and its shapes, the Ray address).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import DistributedError, InputError
from ..progress import progress_bar
from ..repository import default_repository
from ..runtime import ENV_URL
from ..runtime.urls import is_embedded
from .ray_batch import ClientWorker, check_capacity, check_ops, check_workers, compute, connect_ray, import_ray, remote_args
from .sources import Chunk, Plan, load_chunk, plan_input

__all__ = ["BatchResult", "run_batch"]

JOB_FILE = "_aeserve_job.json"
_QUIET = ("ray", "ray.data")  # their INFO lines would interleave with the one progress bar


@dataclass
class BatchResult:
    """What ``run_batch`` did: where the Parquet dataset is, rows in it, chunks run and reused."""

    output: Path
    rows: int
    chunks: int
    resumed_chunks: int
    seconds: float


def _arrow_table(ids: list[str], cols: dict[str, Any], sample_shape: tuple[int, ...] | None) -> Any:
    import pyarrow as pa

    arrays, names = [pa.array(ids, pa.string())], ["row_id"]
    for name, v in cols.items():
        if isinstance(v, np.ndarray) and v.dtype == object:
            arrays.append(pa.array(list(v), pa.binary()))
        elif isinstance(v, np.ndarray) and v.ndim == 2:
            flat = pa.array(np.ascontiguousarray(v, np.float32).reshape(-1))
            arrays.append(pa.FixedSizeListArray.from_arrays(flat, v.shape[1]))
        else:
            arrays.append(pa.array(np.asarray(v)))
        names.append(name)
    meta = {"aeserve.sample_shape": json.dumps(list(sample_shape or ()))}
    return pa.Table.from_arrays(arrays, names=names).replace_schema_metadata(meta)


def _part(staging: Path, index: int) -> Path:
    return staging / f"part-{index:06d}.parquet"


class _ChunkJob(ClientWorker):
    """An actor of ``run_batch``: loads its chunks, applies ``op`` and writes one part file each."""

    def __init__(self, ops: Sequence[str], url: str | None, model: str | None, repository: str | None,
                 options: Mapping[str, Mapping[str, Any]], plan: Plan, staging: str):
        super().__init__(ops, url, model, repository, options)
        self.plan, self.staging = plan, Path(staging)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import pyarrow.parquet as pq

        rows = []
        for index in batch["chunk"]:
            ids, x = load_chunk(self.plan, self.plan.chunks[int(index)], self.client.card.input_shape)
            table = _arrow_table(ids, compute(self.client, self.ops, x, self.options), self.client.card.input_shape)
            final = _part(self.staging, int(index))
            tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
            pq.write_table(table, tmp)
            os.replace(tmp, final)
            rows.append(len(ids))
        return {"chunk": np.asarray(batch["chunk"], np.int64), "rows": np.asarray(rows, np.int64)}


def _prepare_staging(staging: Path, job: dict[str, Any], plan: Plan) -> set[int]:
    """Chunks already written by an earlier run of the same job; anything else there is removed."""
    import pyarrow.parquet as pq

    try:
        same = json.loads((staging / JOB_FILE).read_text()) == job
    except (OSError, ValueError):
        same = False
    if not same:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        (staging / JOB_FILE).write_text(json.dumps(job, indent=1))
        return set()
    done = set()
    for c in plan.chunks:
        part = _part(staging, c.index)
        try:
            if pq.ParquetFile(part).metadata.num_rows == c.stop - c.start:
                done.add(c.index)
        except Exception:  # missing or torn part: it will be written again
            part.unlink(missing_ok=True)
    for tmp in staging.glob(".part-*.tmp"):
        tmp.unlink(missing_ok=True)
    return done


def _finish(staging: Path, output: Path, plan: Plan) -> int:
    """Check every chunk is there exactly once with its rows, then move staging to ``output``."""
    import pyarrow.parquet as pq

    parts = sorted(staging.glob("part-*.parquet"))
    expected = {_part(staging, c.index).name: c.stop - c.start for c in plan.chunks}
    found = {p.name: pq.ParquetFile(p).metadata.num_rows for p in parts}
    if found != expected:
        missing = sorted(set(expected) - set(found))[:3]
        raise DistributedError(f"batch output in {staging} is incomplete (missing or short parts, e.g. {missing}); "
                               "rerun the same command to finish it")
    if output.exists():
        old = output.with_name(f".{output.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(output, old) if output.is_dir() else output.rename(old)
        os.replace(staging, output)
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
    else:
        os.replace(staging, output)
    return sum(found.values())


def run_batch(ops: str | Sequence[str], input: str | os.PathLike[str], output: str | os.PathLike[str], *,
              url: str | None = None, model: str | None = None, repository: str | os.PathLike[str] | None = None,
              address: str | None = None, workers: int = 1, overwrite: bool = False, chunk_rows: int = 1024,
              column: str = "image", num_cpus: float = 1.0, progress: bool = True,
              options: Mapping[str, Mapping[str, Any]] | None = None) -> BatchResult:
    """Apply ``ops`` to every image under ``input`` with ``workers`` Ray actors; write Parquet to ``output``.

    ``output`` becomes a directory of ``part-*.parquet`` files (one Parquet dataset, rows
    keyed by ``row_id``; read it with ``pandas.read_parquet``/``pyarrow.dataset``). See the
    module doc for resuming. Raises ConfigError (op, workers, capacity), InputError
    (``output`` exists and not ``overwrite``), DataError (input), ModelNotFoundError /
    ServerUnavailableError (model, Triton URL, Ray address), DistributedError.
    """
    from .. import Client

    started = time.perf_counter()
    import_ray()
    (ops, options), workers = check_ops(ops, options), check_workers(workers)
    output = Path(output)
    if output.exists() and not overwrite:
        raise InputError(f"output {output} already exists; pass overwrite=True (--overwrite) to replace it")
    url = url if url is not None else (os.environ.get(ENV_URL) or None)  # actors may not share our environment
    if repository is None and (url is None or is_embedded(url)):
        repository = default_repository()
    repo = None if repository is None else str(Path(repository).resolve())
    with Client(url, model, repository=repo) as probe:  # the URL/model/repository work, and the input shape
        shape, model = tuple(probe.card.input_shape), probe.model
        if "features" in ops and not hasattr(probe, "features"):
            compute(probe, ["features"], np.zeros((0, *shape), np.float32), {})
    plan = plan_input(input, chunk_rows=chunk_rows, column=column)
    if plan.sample_shape is not None and plan.sample_shape != shape:
        raise InputError(f"input images are {plan.sample_shape} but model {model!r} takes {shape}")
    started_ray = connect_ray(address, num_cpus=max(workers, 1))
    try:
        check_capacity(workers, num_cpus)
        staging = output.with_name(output.name + ".partial")
        job = {"ops": list(ops), "url": url, "model": model, "repository": repo, "options": options, "input": plan.fingerprint}
        done = _prepare_staging(staging, job, plan)
        _run_chunks(plan, [c for c in plan.chunks if c.index not in done], staging, workers, num_cpus, progress,
                    {"ops": ops, "url": url, "model": model, "repository": repo, "options": options})
        rows = _finish(staging, output, plan)
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    return BatchResult(output, rows, len(plan.chunks), len(done), time.perf_counter() - started)


def _run_chunks(plan: Plan, todo: list[Chunk], staging: Path, workers: int, num_cpus: float, progress: bool,
                client_args: dict[str, Any]) -> None:
    import ray.data

    if not todo:
        return
    ctx = ray.data.DataContext.get_current()
    bars, ctx.enable_progress_bars = ctx.enable_progress_bars, False  # one bar: ours, in rows
    levels = {name: logging.getLogger(name).level for name in _QUIET}
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.ERROR)
    total = sum(c.stop - c.start for c in todo)
    bar = progress_bar(total=total, desc=f"batch {' '.join(client_args['ops'])}", unit="img", enabled=progress)
    try:
        ds = ray.data.from_items([{"chunk": c.index} for c in todo], override_num_blocks=len(todo))
        out = ds.map_batches(_ChunkJob, batch_size=1, **remote_args(min(workers, len(todo)), num_cpus),
                             fn_constructor_kwargs={**client_args, "plan": plan, "staging": str(staging)})
        for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
            bar.update(int(np.sum(batch["rows"])))
    except Exception as e:
        from ..errors import AeserveError

        cause = _aeserve_cause(e)
        if cause is not None:
            raise cause from None
        if isinstance(e, AeserveError):
            raise
        raise DistributedError(f"batch job failed: {' '.join(str(e).split())[:300]}; finished chunks are kept "
                               f"in {staging}, rerun the same command to resume") from None
    finally:
        bar.close()
        ctx.enable_progress_bars = bars
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _aeserve_cause(e: BaseException) -> BaseException | None:
    """The aeserve error a Ray task raised, if the chain holds one."""
    from ..errors import AeserveError

    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, AeserveError):
            return e
        cause = getattr(e, "cause", None)
        if isinstance(cause, AeserveError):
            return cause
        nxt = e.__cause__ or e.__context__
        if nxt is None:
            return None
        e = nxt
    return None
