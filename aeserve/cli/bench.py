"""``aeserve bench``: a thin shell over ``aeserve.eval.throughput.bench``.

    aeserve bench --model mnist_vae --out bench.json
    aeserve bench --batch-sizes 1,64,1024 --ops generate --url grpc://localhost:8001
    aeserve bench --url grpc://localhost:8001 --concurrency 1,4,16,64 --seconds 2   # perf_analyzer-like
"""

from __future__ import annotations

import os

import click

# torch's OpenMP pool next to ONNX Runtime's threads: spin-waiting stalls small batches
# (~70 ms per call measured); must be set before torch loads. A value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ..errors import InputError


def _ints(text: str, option: str = "--batch-sizes") -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"{option} must be comma-separated integers like 1,16,256, got {text!r}") from None


@click.command("bench")
@click.option("--model", default="mnist_vae", show_default=True)
@click.option("--repo", default=None, help="model repository [default: ./model_repository]")
@click.option("--batch-sizes", default="1,4,16,64,256,1024", show_default=True)
@click.option("--ops", default="generate,reconstruct", show_default=True)
@click.option("--seconds", type=float, default=0.5, show_default=True, help="minimum timing per point")
@click.option("--url", "urls", multiple=True, help="also time the Client against this Triton URL (repeatable)")
@click.option("--checkpoint", default=None, help="torch checkpoint [default: from export/manifest.json]")
@click.option("--no-torch", is_flag=True, help="skip the torch eager column")
@click.option("--torch-threads", type=int, default=None, help="torch intra-op threads [default: all CPUs]")
@click.option("--out", default=None, help="write the JSON result here (atomically)")
@click.option("--quiet", is_flag=True)
@click.option("--concurrency", default=None,
              help="instead: batch-1 decode requests from this many concurrent clients, e.g. 1,4,16,64, against "
                   "the first --url (or embedded): requests/s, p50/p99 latency, the server's average batch")
def bench_command(model, repo, batch_sizes, ops, seconds, urls, checkpoint, no_torch, torch_threads, out,
                  quiet, concurrency) -> None:
    """Throughput: aeserve Client vs bare ONNX Runtime vs torch eager (samples/s, overhead %)."""
    from ..eval.report import write_json

    if concurrency is not None:
        from ..eval.concurrency import format_sweep, sweep

        rows = sweep(urls[0] if urls else None, model, _ints(concurrency, "--concurrency"), seconds=seconds,
                     repository=repo)
        click.echo(format_sweep(rows))
        if out is not None:
            click.echo(f"result written to {write_json({'concurrency': rows}, out)}", err=True)
        return
    from ..eval.throughput import bench, format_bench

    result = bench(model, repository=repo, batch_sizes=_ints(batch_sizes), ops=[o for o in ops.split(",") if o],
                   min_seconds=seconds, torch_eager=not no_torch, checkpoint=checkpoint, urls=urls,
                   torch_threads=torch_threads,
                   log=None if quiet else (lambda m: click.echo(m, err=True)))
    click.echo(format_bench(result))
    if out is not None:
        click.echo(f"result written to {write_json(result, out)}", err=True)


COMMANDS = {"bench": bench_command}
