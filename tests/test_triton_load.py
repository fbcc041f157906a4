"""Load on the real Triton server: 16 concurrent clients (8 HTTP, 8 gRPC), thousands of mixed
operations, zero errors, every result checked against the embedded answer, and Triton's
own ``/metrics`` showing dynamic batching at work (requests merged into fewer executions).

Prints: operations, clients, wall time, throughput, server requests and executions, and
the average server batch size per Triton model."""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from collections import Counter

import numpy as np
import pytest

from aeserve import Client
from aeserve.repository import Repository

pytestmark = pytest.mark.triton
CLIENTS = 16
OPS_PER_CLIENT = 200           # 3200 operations in all
POOL = 24                      # distinct request specs per operation kind
OPS = ("encode", "decode", "reconstruct", "generate", "anomaly_score")
_METRIC = re.compile(r'^(nv_inference_\w+)\{model="([^"]+)",version="[^"]*"\} ([0-9.e+]+)$')


def metrics(url: str) -> Counter:
    """{(metric, triton_model): value} for Triton's per-model inference counters."""
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    out: Counter = Counter()
    for line in text.splitlines():
        m = _METRIC.match(line)
        if m:
            out[(m.group(1), m.group(2))] += float(m.group(3))
    return out


def build_pool(local: Client, rng: np.random.Generator) -> list[tuple[str, dict, np.ndarray]]:
    """(operation, kwargs, embedded answer) specs with batch sizes 1..16."""
    pool = []
    shape, dim = local.card.input_shape, local.card.latent_dim
    for i in range(POOL):
        n = int(rng.integers(1, 17))
        x = rng.random((n, *shape), dtype=np.float32)
        z = rng.standard_normal((n, dim)).astype(np.float32)
        pool += [("encode", {"x": x}, local.encode(x)),
                 ("decode", {"z": z}, local.decode(z)),
                 ("reconstruct", {"x": x}, local.reconstruct(x)),
                 ("generate", {"n": n, "seed": i}, local.generate(n, seed=i)),
                 ("anomaly_score", {"x": x}, local.anomaly_score(x))]
    return pool


def test_sixteen_clients_thousands_of_mixed_requests(triton_server, serving_repository):
    name = "mnist_vae" if "mnist_vae" in Repository(serving_repository).models() \
        else Repository(serving_repository).models()[0]
    with Client(None, model=name, repository=serving_repository) as local:
        pool = build_pool(local, np.random.default_rng(0))
    urls = [triton_server.url_http if i % 2 == 0 else triton_server.url_grpc for i in range(CLIENTS)]
    remotes = [Client(u, model=name, timeout=60) for u in urls]
    errors: list[str] = []
    done = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(CLIENTS + 1)

    def worker(k: int) -> None:
        rng = np.random.default_rng(100 + k)
        c = remotes[k]
        barrier.wait()
        for _ in range(OPS_PER_CLIENT):
            op, kw, want = pool[int(rng.integers(len(pool)))]
            try:
                got = getattr(c, op)(*kw.values()) if op != "generate" else c.generate(kw["n"], seed=kw["seed"])
                if got.shape != want.shape or not np.allclose(got, want, rtol=1e-5, atol=1e-5):
                    raise AssertionError(f"{op}: result differs from the embedded answer "
                                         f"(max |diff| {np.max(np.abs(got - want)) if got.shape == want.shape else got.shape})")
            except Exception as e:  # noqa: BLE001 - every failure is counted and reported
                with lock:
                    errors.append(f"client {k} ({urls[k]}) {op}: {type(e).__name__}: {e}")
            with lock:
                done[op] += 1

    before = metrics(triton_server.metrics_url)
    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join(timeout=120)
    wall = time.perf_counter() - t0
    assert not any(t.is_alive() for t in threads), "client threads hung"
    for c in remotes:
        c.close()
    after = metrics(triton_server.metrics_url)
    delta = after - before

    total = sum(done.values())
    print(f"\nload: {total} operations from {CLIENTS} concurrent clients (8 HTTP + 8 gRPC) in {wall:.2f} s "
          f"= {total / wall:.0f} ops/s; mix {dict(done)}; errors {len(errors)}")
    merged = {}
    for graph in (f"{name}_encoder", f"{name}_decoder"):
        reqs = delta[("nv_inference_request_success", graph)]
        infs = delta[("nv_inference_count", graph)]
        execs = delta[("nv_inference_exec_count", graph)]
        merged[graph] = (reqs, infs, execs)
        print(f"  {graph}: {reqs:.0f} requests, {infs:.0f} inferences (images), {execs:.0f} executions -> "
              f"average server batch {infs / max(execs, 1):.1f} images, {reqs / max(execs, 1):.2f} requests/execution")
    server_requests = sum(r for r, _, _ in merged.values())
    print(f"  server: {server_requests:.0f} inference requests = {server_requests / wall:.0f} requests/s")

    assert not errors, f"{len(errors)} errors, first: {errors[:3]}"
    assert total == CLIENTS * OPS_PER_CLIENT
    for graph, (reqs, infs, execs) in merged.items():
        assert reqs > 0 and execs > 0, f"no traffic reached {graph}"
        assert infs > execs, f"{graph}: inference count {infs} not above execution count {execs}"
        assert reqs > execs, f"{graph}: {reqs} requests in {execs} executions - dynamic batching merged nothing"
