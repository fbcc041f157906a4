"""``aeserve batch``: a thin shell over ``aeserve.distributed.batch_job.run_batch`` (Ray Data).

    aeserve batch score compress --input mnist_test.npy --output out.parquet --workers 2
    aeserve batch encode --input images/ --output codes.parquet --url grpc://triton:8001 --address auto
"""

from __future__ import annotations

from typing import Any

import click

from ..distributed.ray_batch import OPS
from .client_verbs import _connection


@click.command("batch")
@click.argument("ops", nargs=-1, required=True, type=click.Choice(OPS))
@click.option("--input", "input_path", required=True,
              help="image file/folder, .npy/.npz shard(s), or Parquet file(s) with an image column")
@click.option("--output", required=True, help="Parquet dataset directory to write, e.g. out.parquet")
@click.option("--address", default=None, help="Ray cluster: auto | HOST:PORT | ray://HOST:PORT [default: local Ray]")
@click.option("--workers", type=int, default=1, show_default=True, help="actors, each holding one Client")
@click.option("--overwrite", is_flag=True, help="replace an existing output")
@click.option("--chunk-rows", type=int, default=1024, show_default=True, help="rows per task and part file")
@click.option("--column", default="image", show_default=True, help="Parquet input: the image column")
@click.option("--method", default=None, help="score: mse | elbo")
@click.option("--bits", type=int, default=None, help="compress: bits per latent dimension")
@_connection
def batch_command(ops: tuple[str, ...], input_path: str, output: str, address: str | None, workers: int,
                  overwrite: bool, chunk_rows: int, column: str, method: str | None, bits: int | None,
                  url: str | None, model: str | None, repo: str | None, quiet: bool) -> None:
    """Run Client operations over many images with Ray actors; write Parquet keyed by row_id."""
    from ..distributed.batch_job import run_batch

    options: dict[str, dict[str, Any]] = {}
    if method is not None:
        options.setdefault("score", {})["method"] = method
    if bits is not None:
        options.setdefault("compress", {})["bits"] = bits
    r = run_batch(ops, input_path, output, url=url, model=model, repository=repo, address=address, workers=workers,
                  overwrite=overwrite, chunk_rows=chunk_rows, column=column, progress=not quiet, options=options)
    click.echo(f"wrote {r.rows} rows ({' '.join(ops)}) to {r.output}: {r.chunks} chunks, "
               f"{r.resumed_chunks} reused from an earlier run, {r.seconds:.1f}s")


COMMANDS = {"batch": batch_command}
