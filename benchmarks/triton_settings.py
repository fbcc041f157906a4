"""Choose Triton's instance count, ONNX Runtime threads and batching delay by measurement.

    python benchmarks/triton_settings.py                       # the default candidates, mnist_vae
    python benchmarks/triton_settings.py --candidates 1x2:100,2x1:100 --levels 1,16 --seconds 2 --n 16384
    python benchmarks/triton_settings.py --candidates 2x1:100/2,2x1:100/8,2x1:100@1024 --levels none

Each candidate ``IxT:D`` is the shipped model pair (``--model`` of ``--repo``) with ``I``
instances per graph, ``T`` ONNX Runtime threads per instance (``AESERVE_TRITON_ORT_THREADS``
of the bundled server's Python backend) and ``max_queue_delay_microseconds`` ``D``; the
rest of the config (``max_batch_size``, preferred batch sizes) stays as shipped. Optional
suffixes: ``/F`` gives the candidate's ``generate`` Client ``max_in_flight=F`` (default: the
Client's own), ``@B`` sets ``max_batch_size`` B (the Client sends chunks of B rows).
``--levels none`` skips the sweep. Every
candidate gets its own bundled server (``aeserve.serve``), all running at once, and is
measured in the same rounds as the others, so the load of a shared machine falls on all:

1. the concurrency sweep of ``aeserve bench --url grpc://... --concurrency`` (batch-1
   ``decode`` clients, ``aeserve.eval.concurrency.sweep``), one level at a time across the
   candidates: images/s, p50/p99, the server's average executed batch, and the CPU time
   per request of this process (the clients) and of the server's process tree
   (``tritonserver`` and its Python-backend stubs, read from ``/proc``; Linux only);
2. ``Client(url).generate(--n)`` over gRPC next to ``Client().generate(--n)`` embedded: wall
   time (best of the rounds) and CPU seconds of client and server (median).

3. how one ONNX Runtime session splits the decoder over its threads: CPU seconds per thread
   of this process (``/proc/self/task``) for ``--split-batches`` runs of a 256-row batch on a
   1-thread and on a 2-thread session (aeserve's session options, as the server's instances).

CPU seconds per request or per image depend far less on the other jobs of a shared machine
than wall times do; the wall-time ratios are what an idle machine would show only when the
load average stays below the cores. Prints one table; ``--out`` writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from google.protobuf import text_format

import aeserve
from aeserve.eval.concurrency import sweep
from aeserve.ort_session import cpu_session
from aeserve.repository import CONFIG_FILENAME, Repository, default_repository, parse_config
from aeserve.serve import free_ports, serve

DEFAULT_CANDIDATES = "1x2:100,2x1:100,2x1:0,2x1:500"
THREADS_ENV = "AESERVE_TRITON_ORT_THREADS"


def parse_candidate(text: str) -> tuple[int, int, int, int | None, int | None]:
    """``"2x1:100"`` -> ``(instances, ort_threads, queue_delay_us, None, None)``;
    ``"2x1:100/8@1024"`` -> ``(2, 1, 100, 8, 1024)`` (in flight, max batch); ValueError if malformed."""
    rest, _, batch = text.partition("@")
    rest, _, flight = rest.partition("/")
    try:
        shape, delay = rest.split(":")
        inst, threads = shape.split("x")
        out = (int(inst), int(threads), int(delay), int(flight) if flight else None, int(batch) if batch else None)
    except ValueError:
        raise ValueError(f"candidate {text!r}: expected INSTANCESxTHREADS:DELAY_US[/IN_FLIGHT][@MAX_BATCH] "
                         "like 2x1:100 or 2x1:100/8@512") from None
    if out[0] < 1 or out[1] < 1 or out[2] < 0 or any(v is not None and v < 1 for v in out[3:]):
        raise ValueError(f"candidate {text!r}: instances, threads, in flight and max batch must be >= 1, "
                         "the delay >= 0")
    return out


def candidate_repo(src: Path, model: str, dst: Path, instances: int, delay_us: int,
                   max_batch: int | None = None) -> Path:
    """Copy ``model``'s encoder/decoder from ``src`` into ``dst`` with the candidate's instance
    count, queue delay and (if given) ``max_batch_size``, dropping preferred batch sizes above
    it; returns ``dst``."""
    for graph in (f"{model}_encoder", f"{model}_decoder"):
        shutil.copytree(src / graph, dst / graph)
        path = dst / graph / CONFIG_FILENAME
        cfg = parse_config(path.read_text(), str(path))
        for group in cfg.instance_group:
            group.count = instances
        cfg.dynamic_batching.max_queue_delay_microseconds = delay_us
        if max_batch is not None:   # Triton refuses preferred batch sizes above max_batch_size
            cfg.max_batch_size = max_batch
            keep = [b for b in cfg.dynamic_batching.preferred_batch_size if b <= max_batch]
            del cfg.dynamic_batching.preferred_batch_size[:]
            cfg.dynamic_batching.preferred_batch_size.extend(keep)
        path.write_text(text_format.MessageToString(cfg))
    return dst


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) of process ``root`` and its live descendants, from /proc."""
    tick, procs = os.sysconf("SC_CLK_TCK"), {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            procs[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    keep, grew = {root}, True
    while grew:
        new = {pid for pid, (parent, _) in procs.items() if parent in keep} - keep
        keep |= new
        grew = bool(new)
    return sum(procs[p][1] for p in keep if p in procs)


def own_cpu() -> float:
    """CPU seconds of this process so far (all its threads)."""
    t = os.times()
    return t.user + t.system


def measured(fn, server_pid: int | None) -> tuple[object, float, float, float]:
    """``(fn(), wall s, client CPU s, server CPU s)``."""
    s0, c0, t0 = tree_cpu(server_pid) if server_pid else 0.0, own_cpu(), time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t0
    return out, wall, own_cpu() - c0, (tree_cpu(server_pid) - s0) if server_pid else 0.0


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each thread of this process so far, from /proc/self/task."""
    tick, out = os.sysconf("SC_CLK_TCK"), {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[tid] = (int(fields[11]) + int(fields[12])) / tick
    return out


def thread_split(onnx_path: Path, latent_dim: int, batches: int, threads: int) -> list[float]:
    """CPU seconds per thread (busiest first) of ``batches`` runs of 256 latents on a
    ``threads``-thread session of ``onnx_path``; threads that did < 5 ms are left out."""
    session = cpu_session(onnx_path, threads=threads)
    z = np.random.default_rng(0).standard_normal((256, latent_dim)).astype(np.float32)
    feed = {session.get_inputs()[0].name: z}
    for _ in range(3):
        session.run(None, feed)
    before = thread_cpu()
    for _ in range(batches):
        session.run(None, feed)
    after = thread_cpu()
    return sorted((round(v, 3) for v in (t - before.get(k, 0.0) for k, t in after.items()) if v >= 0.005),
                  reverse=True)


def run(a: argparse.Namespace) -> dict:
    src = Path(a.repo) if a.repo else default_repository()
    names = a.candidates.split(",")
    shapes = [parse_candidate(c) for c in names]
    levels = [] if a.levels == "none" else [int(v) for v in a.levels.split(",")]
    work = Path(tempfile.mkdtemp(prefix="aeserve-settings-"))
    servers: dict[str, object] = {}
    old_env = os.environ.get(THREADS_ENV)
    res: dict = {"cores": len(os.sched_getaffinity(0)), "load_start": os.getloadavg(), "model": a.model,
                 "sweep": {c: [] for c in names}, "generate": {c: [] for c in ["embedded", *names]}}
    try:
        for name, (inst, threads, delay, _, max_batch) in zip(names, shapes):
            os.environ[THREADS_ENV] = str(threads)   # read by the server's Python backend at load
            h, g, m = free_ports(3)
            repo = candidate_repo(src, a.model, work / f"candidate{len(servers)}", inst, delay, max_batch)
            servers[name] = serve(repo, http_port=h, grpc_port=g, metrics_port=m, ready_timeout=300)
        clients = {"embedded": aeserve.Client(repository=src, model=a.model)}
        clients.update({n: aeserve.Client(s.url_grpc, a.model, timeout=300, max_in_flight=shape[3])
                        for (n, s), shape in zip(servers.items(), shapes)})
        try:
            for c in clients.values():
                c.generate(min(a.n, 4096), seed=1)   # warm-up: sessions, connections, instances
            for _ in range(a.rounds):
                for level in levels:
                    for name, s in servers.items():
                        rows, _, ccpu, scpu = measured(
                            lambda: sweep(s.url_grpc, a.model, (level,), seconds=a.seconds), s.pid)
                        row = dict(rows[0])  # type: ignore[index]
                        done = row["requests"] + level   # + one untimed request per client
                        row.update(client_us_per_request=1e6 * ccpu / done, server_us_per_request=1e6 * scpu / done,
                                   load=os.getloadavg()[0])
                        res["sweep"][name].append(row)
                for name, c in clients.items():
                    pid = servers[name].pid if name in servers else None
                    _, wall, ccpu, scpu = measured(lambda: c.generate(a.n, seed=0), pid)
                    res["generate"][name].append({"wall_s": wall, "client_cpu_s": ccpu, "server_cpu_s": scpu,
                                                  "load": os.getloadavg()[0]})
        finally:
            for c in clients.values():
                c.close()
    finally:
        for s in servers.values():
            s.stop()   # type: ignore[attr-defined]
        if old_env is None:
            os.environ.pop(THREADS_ENV, None)
        else:
            os.environ[THREADS_ENV] = old_env
        shutil.rmtree(work, ignore_errors=True)
    model = Repository(src).model(a.model)
    res["thread_split"] = {str(t): thread_split(model.decoder_path(), model.card.latent_dim, a.split_batches, t)
                           for t in (1, 2)}
    res["load_end"] = os.getloadavg()
    return res


def print_table(res: dict, n: int) -> None:
    emb = res["generate"]["embedded"]
    emb_wall = min(r["wall_s"] for r in emb)
    emb_cpu = statistics.median(r["client_cpu_s"] for r in emb)
    print(f"\ngenerate({n}) over gRPC vs embedded (wall: best of the rounds; CPU: median)")
    print(f"{'candidate':>14} {'wall s':>7} {'emb/this':>8} {'CPU s client+server':>20} {'emb CPU/this CPU':>17}")
    print(f"{'embedded':>14} {emb_wall:>7.2f} {1:>8.2f} {emb_cpu:>20.2f} {1:>17.2f}")
    for name, rows in res["generate"].items():
        if name == "embedded":
            continue
        wall = min(r["wall_s"] for r in rows)
        cc, sc = (statistics.median(r[k] for r in rows) for k in ("client_cpu_s", "server_cpu_s"))
        print(f"{name:>14} {wall:>7.2f} {emb_wall / wall:>8.2f} {f'{cc:.2f}+{sc:.2f}':>20} {emb_cpu / (cc + sc):>17.2f}")
    if any(res["sweep"].values()):
        print("\nbatch-1 decode clients (aeserve bench --concurrency); CPU microseconds per request")
        print(f"{'candidate':>14} {'clients':>7} {'images/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'avg batch':>9} "
              f"{'client us':>9} {'server us':>9} {'load':>5}")
    for name, rows in res["sweep"].items():
        for r in rows:
            avg = "" if r["avg_batch"] is None else f"{r['avg_batch']:.1f}"
            print(f"{name:>14} {r['concurrency']:>7} {r['images_per_s']:>9.0f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} "
                  f"{avg:>9} {r['client_us_per_request']:>9.0f} {r['server_us_per_request']:>9.0f} {r['load']:>5.1f}")
    split = res["thread_split"]
    print(f"\ndecoder, {res['split_batches']} runs of 256 rows: CPU s per thread, busiest first: "
          f"1-thread session {split['1']}, 2-thread session {split['2']}")
    start, end = (" ".join(f"{v:.1f}" for v in res[k]) for k in ("load_start", "load_end"))
    print(f"\nload average: {start} at start, {end} at end ({res['cores']} cores)")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", default=None, help="model repository [default: the shipped one]")
    p.add_argument("--model", default="mnist_vae")
    p.add_argument("--candidates", default=DEFAULT_CANDIDATES, help="comma-separated INSTANCESxTHREADS:DELAY_US")
    p.add_argument("--levels", default="1,4,16,64", help="concurrency levels of the sweep, or none")
    p.add_argument("--seconds", type=float, default=2.0, help="per level and candidate")
    p.add_argument("--n", type=int, default=65536, help="images per generate call")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--split-batches", type=int, default=40, help="decoder runs for the per-thread CPU split")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    a = p.parse_args(argv)
    res = run(a)
    res["split_batches"] = a.split_batches
    res["command"] = "python benchmarks/triton_settings.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print_table(res, a.n)
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main()
