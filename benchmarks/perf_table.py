"""Every performance ratio of the client, the graphs and Triton, side by side, in one run.

    python benchmarks/perf_table.py                        # all shipped models, starts its own Triton
    python benchmarks/perf_table.py --no-triton --models mnist_vae --big 16384

Prints one table (and writes JSON with ``--out``) of ratios measured in the same run, so the
load of a shared machine moves numerator and denominator together (the load average is
printed with them). Rows:

1. ``client/bare generate(n)``: ``aeserve.Client(...).generate(n)`` (embedded, default
   options) over what a user would write by hand: ``numpy`` normal draws plus one
   ``onnxruntime.InferenceSession(path)`` with ORT's default options run on the whole
   batch (in slices of 4096 rows past that: one call at n = 65536 holds several GB).
   A model that cannot generate (no fitted prior: the restoration models) is measured
   with ``decode(z)`` of the same normal draws instead ("decode" in the row).
   n = 1 and 16: medians over ``--seconds`` of calls made in alternating blocks of ``--block``
   calls per contender (the first ``BLOCK_WARMUP`` of each block not counted); n = ``--big``:
   best of 2. ``--block 1`` alternates single calls: then each call runs while the other
   session's spinning ORT workers (ORT's default) still hold the cores, which measures the
   two sessions' interference as much as either; blocks measure each in its steady state,
   as an application calling one of them repeatedly sees it.
   For a model with a fitted prior a third contender, timed in the same rotation, draws the
   same mixture by hand (``bare_mixture``: ``rng.choice`` of components, ``rng.standard_normal``,
   ``mu + L eps``; numpy's sequential generator, not counter-based) before the same bare
   session: ``client/bare-mixture`` is the Client's cost over hand-written code doing the same
   work, so the difference between the two rows is what the prior's sampling costs. A VAE with
   a fitted prior has a fourth contender, ``generate(n, prior="standard")`` (the Client's
   counter-based N(0, I), the bare session's distribution): ``client-standard/bare`` is the
   Client's cost with the mixture taken out.
2. ``graph share of SGEMM peak``: each graph's embedded throughput at n = ``--big``
   (``Client.encode`` / ``Client.decode``) in FLOP/s over the numpy float32 matmul peak
   measured next to it. FLOPs are those of the function the graph computes, counted from its
   Gemm/MatMul/Conv/ConvTranspose nodes; the second layer of the phase-space Convs that export
   writes for a ConvTranspose pair (``aeserve.export.phase_conv``) does ``SECOND_WORK`` times
   the multiply-adds of the ConvTranspose it replaces and is counted at the original's work.
3. ``op shares``: the largest operator shares of the first conv decoder's ORT time (ORT
   profiling, one thread, batch 256).
4. ``Triton gRPC / embedded``: ``generate(--big)`` over gRPC against the bundled server
   (``aeserve.serve``) over the same call embedded.
5. ``16 clients / 1 client``: batch-1 ``decode`` throughput of ``--clients`` concurrent
   gRPC clients over one client, and Triton's average executed batch in the concurrent run.

Targets (this machine, 2 cores): client/bare >= 0.85 at n = 1 and >= 0.95 at n >= 16;
graph share >= 60%; Triton/embedded >= 0.7; concurrent/single >= 3. No assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnx

import aeserve
from aeserve.data import load_dataset
from aeserve.eval.concurrency import sweep
from aeserve.export.phase_conv import SECOND_WORK, is_second_layer
from aeserve.repository import Repository, default_repository

BARE_SLICE = 4096   # the bare session runs large n in slices this big: whole-batch activations need GBs
BLOCK_WARMUP = 2    # calls at the start of each block not counted (the other contender's workers still spin)
TARGETS = {"client_bare_1": 0.85, "client_bare_16": 0.95, "client_bare_big": 0.95, "graph_share": 0.60,
           "triton_embedded": 0.7, "concurrency": 3.0}


def load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def sgemm_peak(size: int = 1024, reps: int = 5) -> float:
    """numpy float32 matmul GFLOP/s, best of ``reps``."""
    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(reps))
    return 2 * size ** 3 / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def graph_flops(path: Path, *, original: bool = True) -> float:
    """FLOPs per sample of Gemm/MatMul/Conv/ConvTranspose nodes (2 per multiply-add); with
    ``original`` the phase-space second-layer Convs count at the work of the ConvTranspose they
    replace (module doc), else every node counts what it executes."""
    proto = onnx.load(str(path))
    for vi in (*proto.graph.input, *proto.graph.output):
        vi.type.tensor_type.shape.dim[0].dim_value = 1
    del proto.graph.value_info[:]
    proto = onnx.shape_inference.infer_shapes(proto)
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in (*proto.graph.value_info, *proto.graph.input, *proto.graph.output)}
    inits = {i.name: list(i.dims) for i in proto.graph.initializer}
    macs = 0
    for node in proto.graph.node:
        w = inits.get(node.input[1]) if len(node.input) > 1 else None
        if w is None:
            continue
        if node.op_type in ("Gemm", "MatMul"):
            macs += int(np.prod(w))
        elif node.op_type == "Conv":
            work = int(np.prod(w)) * int(np.prod(shapes[node.output[0]][2:]))
            macs += work // SECOND_WORK if original and is_second_layer(node.name) else work
        elif node.op_type == "ConvTranspose":
            macs += int(np.prod(w)) * int(np.prod(shapes[node.input[0]][2:]))
    return 2.0 * macs


def client_vs_bare(model: str, repo: Path, ns: list[int], big: int, seconds: float, block: int = 1) -> dict:
    import onnxruntime as ort

    card = Repository(repo).model(model)
    dim = card.card.latent_dim
    bare_sess = ort.InferenceSession(str(card.decoder_path()))          # ORT's defaults
    rng = np.random.default_rng(0)

    def bare(n: int, z: np.ndarray | None = None):
        z = rng.standard_normal((n, dim), dtype=np.float32) if z is None else z
        return [bare_sess.run(None, {"z": z[i:i + BARE_SLICE]}) for i in range(0, n, BARE_SLICE)]

    out: dict = {}
    with aeserve.Client(repository=repo, model=model) as c:
        try:
            c.generate(1)
            op = "generate"
        except aeserve.PriorMissingError:
            op = "decode"
        zs = {n: np.random.default_rng(1).standard_normal((n, dim), dtype=np.float32) for n in ns} \
            if op == "decode" else {}
        prior = c.prior if op == "generate" else None
        standard = prior is not None and c.card.is_vae
        for n in ns:
            client_fn = (lambda n=n: c.generate(n, seed=0)) if op == "generate" else (lambda n=n: c.decode(zs[n]))
            fns = [client_fn, lambda n=n: bare(n)]
            if prior is not None:
                fns.append(lambda n=n: bare(n, bare_mixture(prior, rng, n)))
            if standard:
                fns.append(lambda n=n: c.generate(n, seed=0, prior="standard"))
            for f in fns:
                f()
            times: list[list[float]] = [[] for _ in fns]
            start = time.perf_counter()
            reps, per_block = (2, 1) if n >= big else (3, block)
            while min(len(t) for t in times) < reps or (n < big and time.perf_counter() - start < seconds):
                for i, f in enumerate(fns):
                    took = [_timed(f) for _ in range(per_block)]
                    times[i] += took[BLOCK_WARMUP:] if per_block > BLOCK_WARMUP else took
            pick = min if n >= big else statistics.median
            tc, tb = pick(times[0]), pick(times[1])
            out[n] = {"op": op, "client_per_s": n / tc, "bare_per_s": n / tb, "ratio": tb / tc}
            if prior is not None:
                tm = pick(times[2])
                out[n].update(bare_mixture_per_s=n / tm, ratio_mixture=tm / tc)
            if standard:
                ts = pick(times[3])
                out[n].update(client_standard_per_s=n / ts, ratio_standard=tb / ts)
    return out


def bare_mixture(prior, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` draws from the fitted mixture as a user would write them with numpy: float32 ``(n, d)``."""
    comp = rng.choice(prior.n_components, size=n, p=prior.weights)
    eps = rng.standard_normal((n, prior.dim))
    return (prior.means[comp] + np.einsum("nij,nj->ni", prior.chol[comp], eps)).astype(np.float32)


def graph_shares(model: str, repo: Path, big: int, images: np.ndarray) -> dict:
    m = Repository(repo).model(model)
    out = {}
    with aeserve.Client(repository=repo, model=model) as c:
        x = np.resize(images, (big, *c.card.input_shape)).astype(np.float32)
        z = c.encode(x[:4096])
        z = np.resize(z, (big, z.shape[1])).astype(np.float32)
        for role, path, fn in (("encoder", m.encoder_path(), lambda: c.encode(x)),
                               ("decoder", m.decoder_path(), lambda: c.decode(z))):
            flops = graph_flops(path)
            fn()
            peak = sgemm_peak()
            t = min(_timed(fn) for _ in range(2))
            peak = max(peak, sgemm_peak())
            gflops = big * flops / t / 1e9
            out[role] = {"mflop_per_image": flops / 1e6, "gflops": gflops, "peak_gflops": peak, "share": gflops / peak}
    return out


def op_shares(path: Path) -> dict[str, float]:
    import onnxruntime as ort

    from aeserve.ort_session import session_options

    opts = session_options(threads=1)
    opts.enable_profiling = True
    opts.profile_file_prefix = str(Path(os.environ.get("TMPDIR", "/tmp")) / "aeserve-perf-profile")
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    dim = sess.get_inputs()[0].shape[1]
    z = np.random.default_rng(0).standard_normal((256, dim), dtype=np.float32)
    for _ in range(5):
        sess.run(None, {"z": z})
    prof = Path(sess.end_profiling())
    events = json.loads(prof.read_text())
    prof.unlink()
    per_op: dict[str, float] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            op = e["args"].get("op_name", "?")
            per_op[op] = per_op.get(op, 0.0) + e["dur"]
    total = sum(per_op.values()) or 1.0
    return {op: t / total for op, t in sorted(per_op.items(), key=lambda kv: -kv[1])}


def triton_rows(model: str, repo: Path, big: int, clients: int, seconds: float) -> dict:
    from aeserve.serve import free_ports, serve

    h, g, mport = free_ports(3)
    server = serve(repo, http_port=h, grpc_port=g, metrics_port=mport, ready_timeout=180)
    try:
        with aeserve.Client(repository=repo, model=model) as emb, \
                aeserve.Client(server.url_grpc, model, timeout=300) as grpc:
            emb.generate(4096, seed=1)
            grpc.generate(4096, seed=1)
            te = tg = float("inf")
            for _ in range(2):
                te = min(te, _timed(lambda: emb.generate(big, seed=0)))
                tg = min(tg, _timed(lambda: grpc.generate(big, seed=0)))
        single, many = sweep(server.url_grpc, model, (1, clients), seconds=seconds)
    finally:
        server.stop()
    return {"triton_embedded": te / tg, "embedded_per_s": big / te, "grpc_per_s": big / tg,
            "single_per_s": single["images_per_s"], "many_per_s": many["images_per_s"],
            "concurrency": many["images_per_s"] / single["images_per_s"], "avg_batch": many["avg_batch"],
            "p99_ms": many["p99_ms"], "server_mode": server.mode}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", default=None, help="model repository [default: the shipped one]")
    p.add_argument("--models", default=None, help="comma-separated [default: every model in --repo]")
    p.add_argument("--big", type=int, default=65536, help="the large n")
    p.add_argument("--seconds", type=float, default=1.0, help="time per small-n point and per load run")
    p.add_argument("--block", type=int, default=20, help="calls per contender per block at n = 1 and 16 (1: "
                   "alternate single calls)")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--no-triton", action="store_true")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    a = p.parse_args(argv)
    if a.block < 1:
        p.error(f"--block must be >= 1, got {a.block}")
    repo = Path(a.repo) if a.repo else default_repository()
    models = a.models.split(",") if a.models else Repository(repo).models()
    images = load_dataset("mnist", "test", limit=4096).x
    res: dict = {"command": "python benchmarks/perf_table.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                 "cores": len(os.sched_getaffinity(0)), "load_start": load(), "block": a.block, "models": {}}
    print(f"load average at start: {res['load_start']} on {res['cores']} cores", flush=True)
    for model in models:
        r = res["models"][model] = {"client_bare": client_vs_bare(model, repo, [1, 16, a.big], a.big, a.seconds,
                                                                    a.block)}
        r["graphs"] = graph_shares(model, repo, a.big, images)
        print(f"measured {model} (load {load()})", flush=True)
    conv = [m for m in models if Repository(repo).model(m).card.arch == "conv"]
    res["op_shares"] = op_shares(Repository(repo).model(conv[0]).decoder_path()) if conv else None
    if not a.no_triton:
        res["triton"] = triton_rows(models[0], repo, a.big, a.clients, a.seconds * 3)
    res["load_end"] = load()
    print_table(res, a.big, a.clients)
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=2, default=str) + "\n")
    return res


def print_table(res: dict, big: int, clients: int) -> None:
    def ok(v: float | None, target: float) -> str:
        return "" if v is None else ("  met" if v >= target else "  NOT met")

    print(f"\n{'ratio':<46}{'measured':>10}{'target':>9}   (n = 1, 16: blocks of {res.get('block', 1)} calls)")
    for model, r in res["models"].items():
        for n, key in ((1, "client_bare_1"), (16, "client_bare_16"), (big, "client_bare_big")):
            v, op = r["client_bare"][n]["ratio"], r["client_bare"][n].get("op", "generate")
            print(f"{model + f' client/bare {op}({n})':<46}{v:>10.2f}{TARGETS[key]:>9.2f}{ok(v, TARGETS[key])}")
        for key, label in (("ratio_mixture", "client/bare-mixture"), ("ratio_standard", "client-standard/bare")):
            for n in (1, 16, big):
                v = r["client_bare"][n].get(key)
                if v is not None:
                    print(f"{model + f' {label} generate({n})':<46}{v:>10.2f}")
        for role, g in r["graphs"].items():
            label = f"{model} {role} share of SGEMM peak ({g['mflop_per_image']:.2f} MFLOP)"
            print(f"{label:<46}{g['share']:>10.0%}{TARGETS['graph_share']:>9.0%}{ok(g['share'], TARGETS['graph_share'])}"
                  f"   {g['gflops']:.0f} of {g['peak_gflops']:.0f} GFLOP/s")
    if res.get("op_shares"):
        top = ", ".join(f"{op} {share:.0%}" for op, share in list(res["op_shares"].items())[:3])
        print(f"{'conv decoder time by operator (1 thread)':<46}  {top}")
    t = res.get("triton")
    if t:
        print(f"{f'Triton gRPC/embedded generate({big})':<46}{t['triton_embedded']:>10.2f}"
              f"{TARGETS['triton_embedded']:>9.2f}{ok(t['triton_embedded'], TARGETS['triton_embedded'])}")
        avg = f"   avg executed batch {t['avg_batch']:.1f}" if t["avg_batch"] else ""
        print(f"{f'{clients} clients / 1 client, batch-1 decode (gRPC)':<46}{t['concurrency']:>10.1f}"
              f"{TARGETS['concurrency']:>9.1f}{ok(t['concurrency'], TARGETS['concurrency'])}{avg}")
    print(f"\nload average: {res['load_start']} at start, {res['load_end']} at end ({res['cores']} cores)")


if __name__ == "__main__":
    main()
