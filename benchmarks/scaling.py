"""Scaling-out benchmark, in one run: Ray batch scoring with 1 vs 2 workers, DDP epochs with 1 vs 2 processes.

    python benchmarks/scaling.py --out benchmarks/results/scaling.json

1. ``aeserve batch score`` (``aeserve.distributed.batch_job.run_batch``) over the 60,000 MNIST
   training images (one .npy shard, chunks of 2,048) on a local Ray with 2 CPUs: wall time
   of the job (actor start-up included) and images/s, 1 worker vs 2 workers, next to one
   in-process ``Client.anomaly_score`` call over the same array (no Ray) as the baseline.
2. DDP training (``aeserve.distributed.ddp.launch``, gloo): the MLP AE on the 60,000 MNIST
   training images, batch 128, 2 epochs; epoch time is the trainer's own per-epoch clock
   (``history[i]["seconds"]``, the last epoch: no start-up, no evaluation), 1 vs 2 processes.

Results are ratios measured in the same run (this machine is shared and noisy); the JSON
keeps every raw number. Makes no assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path


def bench_batch(tmp: Path, workers: tuple[int, ...]) -> dict:
    import numpy as np
    import ray

    import aeserve
    from aeserve.data import load_dataset
    from aeserve.distributed.batch_job import run_batch

    x = load_dataset("mnist", "train").x
    path = tmp / "mnist_train.npy"
    np.save(path, x)
    with aeserve.Client() as c:
        c.anomaly_score(x[:256])
        t = time.perf_counter()
        c.anomaly_score(x)
        single = time.perf_counter() - t
    out = {"images": int(len(x)), "client_in_process_s": single, "client_in_process_img_s": len(x) / single,
           "jobs": {}}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        for w in workers:
            r = run_batch("score", path, tmp / f"score_{w}.parquet", workers=w, chunk_rows=2048, progress=False)
            out["jobs"][str(w)] = {"seconds": r.seconds, "img_s": r.rows / r.seconds}
    finally:
        ray.shutdown()
    return out


def bench_ddp(tmp: Path, procs: tuple[int, ...]) -> dict:
    from aeserve.distributed import ddp

    kw = dict(family="ae", arch="mlp", latent_dim=16, data="mnist", epochs=2, batch_size=128, seed=0, progress=False)
    out = {}
    for n in procs:
        t = time.perf_counter()
        r = ddp.launch({**kw, "out": str(tmp / f"ae_{n}.pt")}, nproc_per_node=n)
        out[str(n)] = {"epoch_s": r.history[-1]["seconds"], "launch_total_s": time.perf_counter() - t,
                       "val_loss": r.history[-1]["val_loss"]}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        batch = bench_batch(tmp, (1, 2))
        train = bench_ddp(tmp, (1, 2))
    res = {
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} CPUs, load {os.getloadavg()[0]:.1f}",
        "batch_score": batch,
        "ddp": train,
        "ratios": {
            "batch_score_2_over_1_workers_throughput": batch["jobs"]["2"]["img_s"] / batch["jobs"]["1"]["img_s"],
            "batch_score_1_worker_over_in_process_throughput":
                batch["jobs"]["1"]["img_s"] / batch["client_in_process_img_s"],
            "ddp_epoch_time_2_over_1_processes": train["2"]["epoch_s"] / train["1"]["epoch_s"],
        },
    }
    lines = [f"machine: {res['machine']}",
             f"batch score, {batch['images']} MNIST images: in-process Client {batch['client_in_process_img_s']:.0f} img/s"]
    lines += [f"  Ray, {w} worker(s): {j['seconds']:.1f} s, {j['img_s']:.0f} img/s (actor start-up included)"
              for w, j in batch["jobs"].items()]
    lines += [f"DDP MLP AE epoch on 60k MNIST, {n} process(es): {t['epoch_s']:.2f} s (launch to checkpoint "
              f"{t['launch_total_s']:.1f} s)" for n, t in train.items()]
    lines += [f"ratio {k}: {v:.2f}" for k, v in res["ratios"].items()]
    print("\n".join(lines))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
        Path(args.out).with_suffix(".txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
