"""What the Client's sampling costs per call, and what it does to the ONNX Runtime run after it.

    python benchmarks/sampling.py                         # shipped repository, mnist_vae and mnist_ae2
    PYTHONPATH=/path/to/older/checkout python benchmarks/sampling.py --out old.json   # the same for older code

Microseconds per call (median of ``--calls`` back-to-back calls, best of ``--rounds``), one
thread, for:

- ``noise``: ``aeserve.noise.standard_normal(seed, 0, n, d + 1)`` (a fitted-prior draw's noise);
- ``sample``: ``LatentPrior.sample(seed, 0, n)`` (noise plus the mixture), and with ``label``;
- ``65536 rows in draws of 256 / 4096``: the latents of ``generate(65536)`` drawn a chunk at a
  time vs a window at a time (``aeserve.client.generation.LATENT_WINDOW``);
- ``log_density``: ``LatentPrior.log_density`` of n codes (what ``anomaly_score(method=
  "density" | "combined")`` evaluates per chunk);
- ``run``, ``sample``, ``sample+run``: the decoder on the Client's one-call session options
  alone, the sample alone, and the two in turn, at n = 1: the difference between the last and
  the sum of the first two is what running numpy between two ONNX Runtime runs costs the run
  (``busy+run``: the same with a plain Python busy loop as long as the sample instead);
  ``sample(1) right after a run(1)``: the sample alone again, each call timed right after an
  untimed run (the run leaves the caches to the graph, so the sample starts cold).

Imports ``aeserve`` from wherever Python finds it, so pointing ``PYTHONPATH`` at an older
checkout measures that code with this script. ``--baseline CHECKOUT`` instead loads that
checkout's ``aeserve`` beside this one (as the package ``aeserve_baseline``) and times the
noise and sample rows of both in alternating rounds in this one process (medians over at
least 9 rounds), so the machine's drift moves both alike; the ratio is baseline time / this time.
No assertions.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import aeserve
from aeserve import noise
from aeserve.ort_session import cpu_session, session_options, usable_cores
from aeserve.repository import Repository, default_repository


def load() -> str:
    """The load averages (1, 5, 15 min), one decimal each."""
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def per_call_us(fn, calls: int, rounds: int) -> float:
    """Best over ``rounds`` of the median time of ``calls`` back-to-back calls, in microseconds."""
    best = float("inf")
    for _ in range(rounds):
        for _ in range(10):
            fn()
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        best = min(best, statistics.median(times))
    return best * 1e6


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def measure(model: str, repo: Path, calls: int, rounds: int) -> dict:
    import onnxruntime as ort

    with aeserve.Client(repository=repo, model=model) as c:
        prior = c.prior
    if prior is None:
        raise SystemExit(f"{model} has no fitted prior")
    d, label = prior.dim, (prior.classes[0] if prior.classes else None)
    out: dict = {}
    for n in (1, 16):
        out[f"noise({n})"] = per_call_us(lambda n=n: noise.standard_normal(0, 0, n, d + 1), calls, rounds)
        out[f"sample({n})"] = per_call_us(lambda n=n: prior.sample(0, 0, n), calls, rounds)
        if label is not None:
            out[f"sample({n}, label)"] = per_call_us(lambda n=n: prior.sample(0, 0, n, label=label), calls, rounds)
    for rows in (256, 4096):   # 65,536 latents drawn in pieces of a chunk vs of a window (LatentWindows)
        out[f"65536 rows in draws of {rows}"] = per_call_us(
            lambda rows=rows: [prior.sample(0, s, rows) for s in range(0, 65536, rows)], 3, rounds)
    codes = prior.sample(1, 0, 256).astype(np.float64)
    for n in (1, 256):
        out[f"log_density({n})"] = per_call_us(lambda n=n: prior.log_density(codes[:n]), calls, rounds)
    path = Repository(repo).model(model).decoder_path()
    sess = ort.InferenceSession(str(path), session_options(usable_cores(), spinning=True),
                                providers=["CPUExecutionProvider"]) if usable_cores() > 1 else cpu_session(path, 1)
    z = prior.sample(0, 0, 1)
    out["run(1)"] = per_call_us(lambda: sess.run(None, {"z": z}), calls, rounds)
    out["sample(1) then run(1)"] = per_call_us(lambda: sess.run(None, {"z": prior.sample(0, 0, 1)}), calls, rounds)
    pause = out["sample(1)"] * 1e-6
    out["busy(sample's time) then run(1)"] = per_call_us(lambda: (busy(pause), sess.run(None, {"z": z})), calls, rounds)
    out["sample(1) right after a run(1)"] = after_run_us(lambda: prior.sample(0, 0, 1), lambda: sess.run(None, {"z": z}),
                                                         calls, rounds)
    return out


def after_run_us(fn, run, calls: int, rounds: int) -> float:
    """Like ``per_call_us``, but each timed call of ``fn`` comes right after an untimed ``run()``
    (what the run leaves in the caches is what ``fn`` starts with)."""
    best = float("inf")
    for _ in range(rounds):
        times = []
        for _ in range(calls):
            run()
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        best = min(best, statistics.median(times))
    return best * 1e6


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", default=None, help="model repository [default: the shipped one]")
    p.add_argument("--models", default="mnist_vae,mnist_ae2")
    p.add_argument("--calls", type=int, default=300)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default=None, help="write the results as JSON here")
    p.add_argument("--baseline", default=None, help="an older checkout whose noise and prior are timed alongside")
    a = p.parse_args(argv)
    repo = Path(a.repo) if a.repo else default_repository()
    if a.baseline:
        return compare(Path(a.baseline), repo, a.models.split(","), a.calls, max(a.rounds, 9), a.out)
    res = {"aeserve": str(Path(aeserve.__file__).parent), "load_start": load(),
           "models": {m: measure(m, repo, a.calls, a.rounds) for m in a.models.split(",")}}
    res["load_end"] = load()
    print(f"aeserve from {res['aeserve']}; load average {res['load_start']} at start, {res['load_end']} at end")
    for model, rows in res["models"].items():
        for name, us in rows.items():
            print(f"{model:<12} {name:<34} {us:>9.1f} us")
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    return res


def load_baseline(checkout: Path):
    """The ``aeserve`` package of ``checkout``, imported as ``aeserve_baseline`` (its relative
    imports stay inside it)."""
    init = checkout / "aeserve" / "__init__.py"
    spec = importlib.util.spec_from_file_location("aeserve_baseline", init, submodule_search_locations=[str(init.parent)])
    if spec is None or spec.loader is None:
        raise SystemExit(f"no aeserve package in {checkout}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["aeserve_baseline"] = module
    spec.loader.exec_module(module)
    return module


def compare(checkout: Path, repo: Path, models: list[str], calls: int, rounds: int, out: str | None) -> dict:
    """Noise and sample rows of this code and of ``checkout``'s, in alternating rounds."""
    base = load_baseline(checkout)
    base_noise = importlib.import_module("aeserve_baseline.noise")
    base_prior = importlib.import_module("aeserve_baseline.prior")
    res: dict = {"aeserve": str(Path(aeserve.__file__).parent), "baseline": str(Path(base.__file__).parent),
                 "load_start": load(), "models": {}}
    for model in models:
        with aeserve.Client(repository=repo, model=model) as c:
            prior = c.prior
        if prior is None:
            raise SystemExit(f"{model} has no fitted prior")
        old = base_prior.LatentPrior(prior.weights, prior.means, prior.chol, prior.labels)
        d = prior.dim
        rows: dict = {}
        for n in (1, 16):
            for name, new_fn, old_fn in (
                    (f"noise({n})", lambda n=n: noise.standard_normal(0, 0, n, d + 1),
                     lambda n=n: base_noise.standard_normal(0, 0, n, d + 1)),
                    (f"sample({n})", lambda n=n: prior.sample(0, 0, n), lambda n=n: old.sample(0, 0, n))):
                assert np.array_equal(new_fn(), old_fn()), f"{name}: the two checkouts draw different numbers"
                now, before = [], []
                for _ in range(rounds):
                    now.append(per_call_us(new_fn, calls, 1))
                    before.append(per_call_us(old_fn, calls, 1))
                rows[name] = {"now_us": statistics.median(now), "baseline_us": statistics.median(before)}
        res["models"][model] = rows
    res["load_end"] = load()
    print(f"aeserve from {res['aeserve']}, baseline from {res['baseline']}; load average {res['load_start']} "
          f"at start, {res['load_end']} at end; medians of {rounds} alternating rounds of {calls} calls")
    for model, rows in res["models"].items():
        for name, r in rows.items():
            print(f"{model:<12} {name:<12} {r['now_us']:>8.1f} us   baseline {r['baseline_us']:>8.1f} us   "
                  f"x{r['baseline_us'] / r['now_us']:.2f}")
    if out:
        Path(out).write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
