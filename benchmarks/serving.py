"""Serving benchmark: ``generate(n=65536)`` throughput embedded vs Triton gRPC vs Triton HTTP,
and single-request latency (p50/p99) over gRPC and HTTP, in one run.

    python benchmarks/serving.py                         # starts its own server (aeserve.serve)
    python benchmarks/serving.py --url-grpc grpc://host:8001 --url-http http://host:8000
    python benchmarks/serving.py --n 65536 --repeats 3 --requests 1000 --out benchmarks/results/serving.json

In: a model repository (``--repo``, default ``aeserve.repository.default_repository()``) and a
model (``--model``, default mnist_vae). Out: a table on stdout and a JSON file (``--out``)
with every measurement and the environment. Throughput: the best of ``--repeats`` timed
runs after one warm-up run, in images/s; every run's result is checked equal to the
embedded one. Latency: ``--requests`` sequential ``decode`` calls of ``--latency-batch``
latents (one server request each) after ``--warmup`` untimed ones.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from aeserve import Client
from aeserve.fileio import write_bytes_atomic
from aeserve.repository import default_repository
from aeserve.serve import MODES, free_ports, serve


def throughput(client: Client, n: int, repeats: int, reference: np.ndarray | None) -> dict:
    client.generate(min(n, 4096), seed=1)  # warm-up: sessions, connections, server instances
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = client.generate(n, seed=0)
        times.append(time.perf_counter() - t0)
        if reference is not None and not np.allclose(out, reference, rtol=1e-5, atol=1e-5):
            raise SystemExit(f"{client!r}: generate({n}) differs from the embedded result")
    best = min(times)
    return {"n": n, "seconds": times, "best_s": best, "images_per_s": n / best, "_out": out}


def latency(client: Client, requests: int, warmup: int, batch: int) -> dict:
    z = np.random.default_rng(0).standard_normal((batch, client.card.latent_dim)).astype(np.float32)
    for _ in range(warmup):
        client.decode(z)
    ms = np.empty(requests)
    for i in range(requests):
        t0 = time.perf_counter()
        client.decode(z)
        ms[i] = (time.perf_counter() - t0) * 1e3
    return {"requests": requests, "batch": batch, "p50_ms": float(np.percentile(ms, 50)),
            "p90_ms": float(np.percentile(ms, 90)), "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(ms.mean()), "max_ms": float(ms.max())}


def server_versions(url_http: str) -> dict:
    import tritonclient.http as thttp

    c = thttp.InferenceServerClient(url_http.split("://", 1)[1])
    try:
        return {k: v for k, v in c.get_server_metadata().items() if k in ("name", "version")}
    finally:
        c.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", default=None, help="model repository [default: ./model_repository]")
    p.add_argument("--model", default="mnist_vae")
    p.add_argument("--n", type=int, default=65536, help="images per generate call")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--requests", type=int, default=1000, help="timed single requests per protocol")
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--latency-batch", type=int, default=1)
    p.add_argument("--max-in-flight", type=int, default=4, help="Client max_in_flight for generate")
    p.add_argument("--url-grpc", default=None, help="use this server instead of starting one")
    p.add_argument("--url-http", default=None)
    p.add_argument("--mode", default="auto", choices=MODES)
    p.add_argument("--out", default="benchmarks/results/serving.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    repo = Path(a.repo) if a.repo else default_repository()
    server = None
    if a.url_grpc is None or a.url_http is None:
        h, g, m = free_ports(3)
        server = serve(repo, http_port=h, grpc_port=g, metrics_port=m, mode=a.mode, ready_timeout=180)
        a.url_grpc, a.url_http = server.url_grpc, server.url_http
    try:
        results: dict = {"throughput": {}, "latency": {}}
        clients = {"embedded": Client(None, a.model, repository=repo, max_in_flight=a.max_in_flight),
                   "grpc": Client(a.url_grpc, a.model, timeout=120, max_in_flight=a.max_in_flight),
                   "http": Client(a.url_http, a.model, timeout=120, max_in_flight=a.max_in_flight)}
        reference = None
        for name, c in clients.items():
            r = throughput(c, a.n, a.repeats, reference)
            out = r.pop("_out")
            reference = out if reference is None else reference
            results["throughput"][name] = r
        for name in ("grpc", "http"):
            results["latency"][name] = latency(clients[name], a.requests, a.warmup, a.latency_batch)
        card = clients["embedded"].card
        results["setup"] = {
            "model": a.model, "family": card.family, "arch": card.arch, "latent_dim": card.latent_dim,
            "max_batch_size": clients["embedded"].max_batch_size, "max_in_flight": a.max_in_flight,
            "server_mode": server.mode if server else "external", "server": server_versions(a.url_http),
            "embedded_providers": getattr(clients["embedded"].runtime, "providers", lambda m: None)(a.model),
            "cpus": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": "python benchmarks/serving.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        }
        for c in clients.values():
            c.close()
    finally:
        if server is not None:
            server.stop()
    print_table(results)
    out = write_bytes_atomic(a.out, (json.dumps(results, indent=2) + "\n").encode())
    print(f"\nwritten {out}")
    return results


def print_table(results: dict) -> None:
    s = results["setup"]
    print(f"model {s['model']} ({s['family']}/{s['arch']}, latent {s['latent_dim']}), max_batch_size "
          f"{s['max_batch_size']}, max_in_flight {s['max_in_flight']}, server {s['server_mode']} "
          f"Triton {s['server'].get('version', '?')}, {s['cpus']} CPUs")
    print(f"\n{'generate(n=%d)' % next(iter(results['throughput'].values()))['n']:<22}{'best s':>10}{'images/s':>14}")
    for name, r in results["throughput"].items():
        print(f"{name:<22}{r['best_s']:>10.3f}{r['images_per_s']:>14,.0f}")
    print(f"\n{'single request':<22}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'requests':>10}")
    for name, r in results["latency"].items():
        label = f"{name} decode(batch {r['batch']})"
        print(f"{label:<22}{r['p50_ms']:>10.2f}{r['p90_ms']:>10.2f}{r['p99_ms']:>10.2f}{r['requests']:>10}")


if __name__ == "__main__":
    main()
