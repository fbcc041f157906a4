"""Throughput of the Client against a bare ONNX Runtime session and torch eager, same model.

    from aeserve.eval.throughput import bench, format_bench
    result = bench("mnist_vae", batch_sizes=(1, 16, 256, 1024))
    print(format_bench(result))            # samples/s per backend, ratios, client overhead in %

Backends, all on the same weights:

``aeserve``  ``aeserve.Client`` embedded (validation, splitting at max_batch_size, up to
             ``max_in_flight`` chunks in flight, counter-based noise for ``generate``)
``ort``      a bare ``onnxruntime.InferenceSession`` per graph, built with the embedded
             runtime's options, called once with the whole batch (no splitting)
``torch``    the checkpoint the model was exported from (``export/manifest.json``), eager,
             ``torch.inference_mode()``; skipped with a reason when torch or the checkpoint
             is missing
``<url>``    ``aeserve.Client`` over each Triton URL given

``generate`` decodes z ~ N(0, I); ``reconstruct`` encodes test images and decodes the
code (VAE: the posterior mean). Per point the call is repeated until ``min_seconds`` have
passed (at least 3 times) after one warm-up call; the median call time is reported.
``overhead_pct = (t_aeserve / t_ort - 1) * 100``. No assertions on time anywhere.
"""

from __future__ import annotations

import functools
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import AeserveError, ConfigError

BATCH_SIZES = (1, 4, 16, 64, 256, 1024)
OPS = ("generate", "reconstruct")


def time_call(fn: Callable[[], Any], min_seconds: float = 0.5, min_reps: int = 3) -> float:
    """Median wall time of ``fn()`` in seconds after one warm-up call."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class _BareOrt:
    """The model's two ONNX files in plain sessions (same options as the embedded runtime)."""

    def __init__(self, repository: str | os.PathLike[str] | None, model: str):
        from ..ort_session import cpu_session
        from ..repository import Repository

        m = Repository(repository).model(model)
        self.enc = cpu_session(m.encoder_path())
        self.dec = cpu_session(m.decoder_path())
        self.first_output = self.enc.get_outputs()[0].name      # "mu" or "z"
        self.providers = self.dec.get_providers()

    def generate(self, z: np.ndarray) -> np.ndarray:
        return self.dec.run(None, {"z": z})[0]

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        code = self.enc.run([self.first_output], {"x": x})[0]
        return self.dec.run(None, {"z": code})[0]


def _torch_model(model: str, checkpoint: str | os.PathLike[str] | None) -> tuple[Any, str]:
    """(torch model, checkpoint path) from ``checkpoint`` or the export manifest entry for ``model``."""
    if checkpoint is None:
        from ..export.manifest import DEFAULT_MANIFEST, load_manifest

        if not Path(DEFAULT_MANIFEST).is_file():
            raise ConfigError(f"no {DEFAULT_MANIFEST} here to find {model!r}'s checkpoint; pass --checkpoint")
        entries = [e for e in load_manifest(DEFAULT_MANIFEST) if e.name == model]
        if not entries:
            raise ConfigError(f"{model!r} is not in {DEFAULT_MANIFEST}; pass --checkpoint")
        checkpoint = entries[0].checkpoint
    from .. import checkpoint as ckpt

    return ckpt.load(checkpoint).eval(), str(checkpoint)


def bench(model: str = "mnist_vae", *, repository: str | os.PathLike[str] | None = None,
          batch_sizes: Sequence[int] = BATCH_SIZES, ops: Sequence[str] = OPS, min_seconds: float = 0.5,
          torch_eager: bool = True, checkpoint: str | os.PathLike[str] | None = None,
          urls: Sequence[str] = (), torch_threads: int | None = None,
          log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure every (op, batch size, backend); returns ``{"rows": [...], "summary": [...], ...}``.

    ``torch_threads`` defaults to every CPU (like ONNX Runtime's default); on a machine other
    jobs keep busy, torch's OpenMP pool degrades far more than ORT's non-spinning one, so the
    1-minute load average before and after the run is recorded in the result.

    ConfigError for an unknown op or a batch size < 1; the Client's errors for an unknown
    model or an unreachable URL."""
    from ..client import Client
    from ..data import load_dataset

    bad_ops = [o for o in ops if o not in OPS]
    if bad_ops or not ops:
        raise ConfigError(f"unknown op(s) {bad_ops or '(none)'}; expected some of {', '.join(OPS)}")
    if not batch_sizes or any(isinstance(b, bool) or int(b) < 1 for b in batch_sizes):
        raise ConfigError(f"batch sizes must be positive integers, got {list(batch_sizes)}")
    say = log or (lambda m: None)
    clients = {"aeserve": Client(None, model, repository=repository)}
    try:
        for url in urls:
            clients[url] = Client(url, model)
        card = clients["aeserve"].card
        bare = _BareOrt(repository, model)
        skipped: dict[str, str] = {}
        net = None
        if torch_eager:
            # measured: with libgomp's default spin-waiting, torch's 2-thread pool next to ORT's
            # threads in one process stalls ~70 ms per call at small batches; passive waiting
            # fixes it. It only works before torch is imported, so the CLI sets
            # OMP_WAIT_POLICY=PASSIVE up front; a library call leaves the environment alone.
            try:
                import torch

                net, checkpoint = _torch_model(model, checkpoint)
                threads_before = torch.get_num_threads()
                torch.set_num_threads(torch_threads or os.cpu_count() or 1)  # restored below
                used_threads = torch.get_num_threads()
            except (AeserveError, ImportError) as e:
                skipped["torch"] = str(e)
        else:
            skipped["torch"] = "disabled"
        load_before = os.getloadavg()[0]
        x_all = load_dataset(card.dataset, "test", limit=max(batch_sizes)).x
        x_all = np.concatenate([x_all] * -(-max(batch_sizes) // len(x_all)))[:max(batch_sizes)]
        rng = np.random.default_rng(0)
        rows = []
        for op in ops:
            for b in batch_sizes:
                x = x_all[:b]
                fns: dict[str, Callable[[], Any]] = {}
                if op == "generate":
                    fns["ort"] = lambda: bare.generate(rng.standard_normal((b, card.latent_dim), dtype=np.float32))
                else:
                    fns["ort"] = lambda: bare.reconstruct(x)
                for name, c in clients.items():
                    fns[name] = (functools.partial(c.generate, b, seed=1) if op == "generate"
                                 else functools.partial(c.reconstruct, x))
                if net is not None:
                    fns["torch"] = _torch_fn(net, op, x, card.latent_dim)
                for backend, fn in fns.items():
                    t = time_call(fn, min_seconds)
                    rows.append({"op": op, "batch": int(b), "backend": backend, "seconds_per_call": t,
                                 "samples_per_s": b / t})
                    say(f"[bench] {op:<12} batch {b:>5} {backend:<10} {b / t:>12,.0f} samples/s")
    finally:
        for c in clients.values():
            c.close()
        if net is not None:
            torch.set_num_threads(threads_before)
    return {"model": model, "card": {"family": card.family, "arch": card.arch, "latent_dim": card.latent_dim},
            "providers": bare.providers, "cpu_count": os.cpu_count(),
            "max_batch_size": clients["aeserve"].max_batch_size,
            "checkpoint": None if net is None else str(checkpoint), "skipped": skipped,
            "min_seconds": min_seconds, "load_average": [load_before, os.getloadavg()[0]],
            "torch_threads": None if net is None else used_threads,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "rows": rows, "summary": summarize(rows)}


def _torch_fn(net: Any, op: str, x: np.ndarray, latent_dim: int) -> Callable[[], Any]:
    import torch

    xt = torch.from_numpy(x)
    gen = torch.Generator().manual_seed(0)  # never the caller's global stream

    def generate() -> Any:
        with torch.inference_mode():
            return net.decoder(torch.randn(len(x), latent_dim, generator=gen)).numpy()

    def reconstruct() -> Any:
        with torch.inference_mode():
            return net(xt).numpy()

    return generate if op == "generate" else reconstruct


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (op, batch): samples/s per backend, ratios to bare ORT, client overhead %."""
    out = []
    keys = list(dict.fromkeys((r["op"], r["batch"]) for r in rows))
    for op, b in keys:
        sps = {r["backend"]: r["samples_per_s"] for r in rows if r["op"] == op and r["batch"] == b}
        row: dict[str, Any] = {"op": op, "batch": b, "samples_per_s": sps}
        if "ort" in sps:
            row["ratio_to_ort"] = {k: v / sps["ort"] for k, v in sps.items() if k != "ort"}
            if "aeserve" in sps:
                row["overhead_pct"] = (sps["ort"] / sps["aeserve"] - 1.0) * 100.0
        out.append(row)
    return out


def format_bench(result: dict[str, Any]) -> str:
    """Markdown-style table: samples/s per backend, aeserve/ort and torch/ort, overhead %."""
    backends = list(dict.fromkeys(r["backend"] for r in result["rows"]))
    head = ["op", "batch", *[f"{b} /s" for b in backends], "aeserve/ort", "torch/ort", "overhead %"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for s in result["summary"]:
        ratio = s.get("ratio_to_ort", {})
        cells = [s["op"], str(s["batch"]), *[f"{s['samples_per_s'].get(b, float('nan')):,.0f}" for b in backends],
                 f"{ratio.get('aeserve', float('nan')):.2f}", f"{ratio.get('torch', float('nan')):.2f}",
                 f"{s.get('overhead_pct', float('nan')):+.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    note = f"model {result['model']} ({result['card']['arch']} {result['card']['family']}, latent " \
           f"{result['card']['latent_dim']}), providers {result['providers']}, {result['cpu_count']} CPUs, " \
           f"torch threads {result['torch_threads']}, client max_batch_size {result['max_batch_size']}, " \
           f"load average {result['load_average'][0]:.2f} -> {result['load_average'][1]:.2f}"
    if result["skipped"]:
        note += "; skipped: " + "; ".join(f"{k}: {v}" for k, v in result["skipped"].items())
    return note + "\n" + "\n".join(lines)
