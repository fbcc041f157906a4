"""int8 quantization per shipped model and graph: speed on one core and quality, static vs dynamic.

    python benchmarks/quantize.py                      # every model in export/manifest.json
    python benchmarks/quantize.py --models mnist_vae --images 1000

For each model the fp32 graphs are exported from the checkpoint, then each graph is
quantized both ways (``aeserve.export.quantize.quantize_graph``; calibration: 512 seeded
training images) and measured: speed = fp32 time / int8 time on one ORT thread (process
CPU time, best of 3 calls of 2048 inputs; CPU time is what a shared machine distorts
least) and the reconstruction PSNR change in dB on ``--images`` test images with the
other graph in fp32. Prints one row per (model, graph, method); no assertions.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from aeserve import checkpoint  # noqa: E402
from aeserve.contract import encoder_outputs  # noqa: E402
from aeserve.export.manifest import load_manifest  # noqa: E402
from aeserve.export.onnx_graphs import export_graphs  # noqa: E402
from aeserve.export.quantize import METHODS, dataset_images, quantize_graph, reconstruction_psnr  # noqa: E402
from aeserve.ort_session import cpu_session  # noqa: E402


def cpu_time(model: bytes, name: str, x: np.ndarray) -> float:
    sess = cpu_session(model, threads=1)
    sess.run(None, {name: x})
    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        sess.run(None, {name: x})
        best = min(best, time.process_time() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", default="export/manifest.json")
    ap.add_argument("--models", default=None, help="comma-separated names [default: all in the manifest]")
    ap.add_argument("--images", type=int, default=1000, help="test images for the PSNR change")
    args = ap.parse_args()
    wanted = None if args.models is None else set(args.models.split(","))
    print(f"{'model':14s} {'graph':8s} {'method':8s} {'speed (1 thread)':>17s} {'PSNR change':>12s}")
    for entry in load_manifest(args.manifest):
        if wanted is not None and entry.name not in wanted:
            continue
        model = checkpoint.load(entry.checkpoint)
        enc, dec = export_graphs(model, entry.name)
        cal, gate = dataset_images(model.card)
        gate = gate[:args.images]
        code = encoder_outputs(model.card)[0]
        fp32 = {"encoder": enc.serialize(), "decoder": dec.serialize()}
        base = reconstruction_psnr(fp32["encoder"], fp32["decoder"], code, gate)
        z_cal = cpu_session(fp32["encoder"]).run([code], {"x": cal})[0]
        feeds = {"encoder": np.tile(gate[:512], (4, 1, 1, 1))[:2048],
                 "decoder": np.tile(z_cal, (4, 1))[:2048]}
        for graph, calib in ((enc, cal), (dec, z_cal)):
            t32 = cpu_time(fp32[graph.role], graph.input_name, feeds[graph.role])
            for method in METHODS:
                q = quantize_graph(graph, method, calib).serialize()
                pair = {**fp32, graph.role: q}
                change = reconstruction_psnr(pair["encoder"], pair["decoder"], code, gate) - base
                speed = t32 / cpu_time(q, graph.input_name, feeds[graph.role])
                print(f"{entry.name:14s} {graph.role:8s} {method:8s} {speed:>16.2f}x {change:>+11.3f} dB", flush=True)


if __name__ == "__main__":
    main()
