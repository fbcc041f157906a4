"""Throughput and latency under concurrent clients, in the spirit of Triton's perf_analyzer.

    from aeserve.eval.concurrency import sweep, format_sweep
    rows = sweep("grpc://localhost:8001", "mnist_vae", levels=(1, 4, 16, 64), seconds=2.0)
    print(format_sweep(rows))      # per level: requests/s, images/s, p50/p99 ms, server's average batch

For each concurrency level ``c``, ``c`` threads each hold their own ``aeserve.Client`` and
send ``decode`` requests of ``batch`` latents back to back for ``seconds`` (after one
untimed request each); the latencies of all completed requests give p50 and p99. Against a
Triton URL the server's inference/execution counts before and after each level give the
average batch its dynamic batcher executed. ``url`` None or ``"embedded"`` measures the
in-process runtime instead (no server statistics). Raises ConfigError for bad levels or
durations, and whatever ``aeserve.Client`` raises for an unreachable server or unknown model.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError

DEFAULT_LEVELS = (1, 4, 16, 64)


def check_levels(levels: Sequence[int]) -> tuple[int, ...]:
    """Concurrency levels: a non-empty sequence of integers >= 1."""
    try:
        out = tuple(int(v) for v in levels)
    except (TypeError, ValueError):
        raise ConfigError(f"concurrency levels must be integers like 1,4,16,64; got {levels!r}") from None
    if not out or min(out) < 1:
        raise ConfigError(f"concurrency levels must be integers >= 1, got {list(out)}")
    return out


def sweep(url: str | None, model: str, levels: Sequence[int] = DEFAULT_LEVELS, *, seconds: float = 2.0,
          batch: int = 1, repository: str | None = None, timeout: float = 60.0) -> list[dict[str, Any]]:
    """One row per level: ``concurrency, requests, requests_per_s, images_per_s, p50_ms, p99_ms, avg_batch``."""
    from .. import Client

    levels = check_levels(levels)
    if not seconds > 0 or not isinstance(batch, int) or batch < 1:
        raise ConfigError(f"seconds must be > 0 and batch an integer >= 1; got {seconds!r} and {batch!r}")
    embedded = url in (None, "", "embedded")
    rows = []
    for level in levels:
        clients = [Client(None if embedded else url, model, repository=repository, timeout=timeout, max_in_flight=1)
                   for _ in range(level)]
        try:
            z = np.zeros((batch, clients[0].card.latent_dim), np.float32)
            for c in clients:
                c.decode(z)
            before = None if embedded else _server_counts(clients[0], model)
            latencies, elapsed = _run(clients, z, seconds)
            after = None if embedded else _server_counts(clients[0], model)
        finally:
            for c in clients:
                c.close()
        executed = None
        if before and after and after[1] > before[1]:
            executed = (after[0] - before[0]) / (after[1] - before[1])
        lat = np.array(latencies) * 1e3
        rows.append({"concurrency": level, "requests": len(lat), "requests_per_s": len(lat) / elapsed,
                     "images_per_s": len(lat) * batch / elapsed, "p50_ms": float(np.percentile(lat, 50)),
                     "p99_ms": float(np.percentile(lat, 99)), "avg_batch": executed})
    return rows


def _run(clients: list, z: np.ndarray, seconds: float) -> tuple[list[float], float]:
    """Every thread decodes ``z`` back to back until ``seconds`` pass; returns latencies and wall time."""
    stop = threading.Event()
    per_thread: list[list[float]] = [[] for _ in clients]

    def loop(i: int) -> None:
        c, out = clients[i], per_thread[i]
        while not stop.is_set():
            t0 = time.perf_counter()
            c.decode(z)
            out.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(len(clients))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return [v for lat in per_thread for v in lat], time.perf_counter() - t0


def _server_counts(client: Any, model: str) -> tuple[int, int] | None:
    """(inference_count, execution_count) of the decoder on the server, None if it cannot say."""
    stats = getattr(client.runtime, "inference_statistics", None)
    if stats is None:
        return None
    try:
        return stats(model + "_decoder")
    except Exception:  # noqa: BLE001 - statistics are optional for the sweep
        return None


def format_sweep(rows: list[dict[str, Any]]) -> str:
    """A perf_analyzer-like table of ``sweep`` rows."""
    lines = [f"{'concurrency':>11} {'req/s':>9} {'images/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'avg batch':>10}"]
    for r in rows:
        avg = "" if r["avg_batch"] is None else f"{r['avg_batch']:.1f}"
        lines.append(f"{r['concurrency']:>11} {r['requests_per_s']:>9.0f} {r['images_per_s']:>10.0f} "
                     f"{r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {avg:>10}")
    return "\n".join(lines)
