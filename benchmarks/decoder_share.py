"""Conv decoder throughput as a share of the SGEMM peak, on the FLOPs of the original function.

    python benchmarks/decoder_share.py                                   # shipped conv decoders
    python benchmarks/decoder_share.py --baseline /tmp/before/model_repository --rounds 3

Like ``perf_table.py``'s graph-share row (``Client.decode`` at n = ``--big``, embedded,
default options: 2 chunks of 256 in flight, one ONNX Runtime thread each; numpy float32
1024x1024 matmul peak measured around it, the best of all), plus the same call with one
request in flight on a 2-thread session. The FLOPs are those of the ORIGINAL decoder:
the export rewrites ConvTranspose pairs as phase-space Convs (``aeserve.export.phase_conv``)
whose second layer does 4x the multiply-adds of the ConvTranspose it replaces, so a
count over the shipped graph's nodes (``perf_table.graph_flops``) would credit that extra
work; here it is taken out. ``--baseline``: another repository holding the same models
(e.g. the graphs before the rewrite: ``git archive <commit> model_repository | tar -x -C
/tmp/before``), timed in the same rounds, alternating, so load moves both alike.
Target (this machine): share >= 60%. No assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf_table import graph_flops, load, sgemm_peak  # noqa: E402  (one FLOP count, peak and load for both tables)

import aeserve  # noqa: E402
from aeserve.repository import Repository, default_repository  # noqa: E402

TARGET = 0.60


def original_flops(path: Path) -> tuple[float, float]:
    """(FLOPs per image counted over the graph's nodes, FLOPs of the original function)."""
    return graph_flops(path, original=False), graph_flops(path)


def measure(repos: dict[str, Path], model: str, big: int, rounds: int) -> dict:
    """Decode throughput per repository and layout, alternating every round."""
    layouts = {"2x1": {}, "1x2": {"threads": 2, "max_in_flight": 1}}
    clients = {(name, lay): aeserve.Client(repository=root, model=model, **kw)
               for name, root in repos.items() for lay, kw in layouts.items()}
    z = np.random.default_rng(0).standard_normal((big, clients[next(iter(clients))].card.latent_dim), dtype=np.float32)
    for c in clients.values():
        c.decode(z[:4096])
    times: dict[tuple[str, str], list[float]] = {k: [] for k in clients}
    peaks = [sgemm_peak()]
    for _ in range(rounds):
        for key, c in clients.items():
            t0 = time.perf_counter()
            c.decode(z)
            times[key].append(time.perf_counter() - t0)
        peaks.append(sgemm_peak())
    for c in clients.values():
        c.close()
    peak = max(peaks)
    out: dict = {"peak_gflops": peak, "peak_min_gflops": min(peaks), "repos": {}}
    for name, root in repos.items():
        counted, orig = original_flops(Repository(root).model(model).decoder_path())
        r = out["repos"][name] = {"counted_mflop": counted / 1e6, "original_mflop": orig / 1e6}
        for lay in layouts:
            t = min(times[(name, lay)])
            g = big * orig / t / 1e9
            r[lay] = {"seconds": t, "gflops": g, "share": g / peak, "all_seconds": times[(name, lay)]}
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", default=None, help="model repository [default: the shipped one]")
    p.add_argument("--baseline", default=None, help="a second repository timed alongside (e.g. before the rewrite)")
    p.add_argument("--models", default=None, help="comma-separated [default: every conv model in --repo]")
    p.add_argument("--big", type=int, default=65536)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", default=None, help="write the results as JSON here")
    a = p.parse_args(argv)
    repo = Path(a.repo) if a.repo else default_repository()
    models = a.models.split(",") if a.models else [m for m in Repository(repo).models()
                                                    if Repository(repo).model(m).card.arch == "conv"]
    repos = {"shipped": repo, **({"baseline": Path(a.baseline)} if a.baseline else {})}
    start = load()
    res: dict = {"command": "python benchmarks/decoder_share.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                 "load_start": start, "models": {}}
    print(f"load average at start: {start} on {len(os.sched_getaffinity(0))} cores", flush=True)
    for model in models:
        res["models"][model] = measure(repos, model, a.big, a.rounds)
    res["load_end"] = load()
    print(f"\n{'decoder (n=' + str(a.big) + ')':<34}{'MFLOP orig/graph':>18}{'2x1 share':>11}{'1x2 share':>11}"
          f"{'peak':>7}  (target {TARGET:.0%})")
    for model, m in res["models"].items():
        for name, r in m["repos"].items():
            print(f"{model + ' ' + name:<34}{r['original_mflop']:>8.2f} / {r['counted_mflop']:<7.2f}"
                  f"{r['2x1']['share']:>11.0%}{r['1x2']['share']:>11.0%}{m['peak_gflops']:>7.0f}"
                  f"   {r['2x1']['gflops']:.0f} / {r['1x2']['gflops']:.0f} GFLOP/s")
        if "baseline" in m["repos"]:
            b, s = m["repos"]["baseline"], m["repos"]["shipped"]
            print(f"{'  shipped/baseline speed':<34}{'':>18}{b['2x1']['seconds'] / s['2x1']['seconds']:>11.2f}"
                  f"{b['1x2']['seconds'] / s['1x2']['seconds']:>11.2f}")
    print(f"\nload average: {res['load_start']} at start, {res['load_end']} at end")
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main()
