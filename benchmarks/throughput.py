"""Throughput benchmark: the aeserve Client vs a bare ONNX Runtime session vs torch eager.

    python benchmarks/throughput.py --model mnist_vae --out benchmarks/results/throughput.json

Same as ``aeserve bench`` (see ``aeserve.eval.throughput`` for what is measured and how):
embedded ``generate``/``reconstruct`` over batch sizes 1..1024, samples/s per backend,
ratios to the bare session, and the client-side overhead in percent. Prints a table,
writes JSON with ``--out``; makes no assertions on time.
"""

from aeserve.cli.bench import bench_command

if __name__ == "__main__":
    bench_command(prog_name="python benchmarks/throughput.py")
