"""The parity gate: ONNX Runtime must reproduce torch before anything is written.

    report = check_parity(graph, model.encoder, max_batch=256)   # ParityError if not
    report.max_abs_diff, report.batches, report.tolerance

In: an exported ``Graph``, the fp32 torch module it came from, ``max_batch``. The graph
is run in ONNX Runtime (CPU) at batch 1, an odd batch (7, or the largest odd batch
<= max_batch) and ``max_batch`` on seeded random inputs (images in [0, 1], latents
~ N(0, 1)); each output is compared with torch fp32. Passes if every element has
``|onnx - torch| <= atol + rtol * |torch|``. Tolerances: ``FP32_TOLERANCE`` for fp32
graphs, the looser ``FP16_TOLERANCE`` for ``--fp16`` graphs (still against fp32 torch).
Raises ParityError on a difference beyond tolerance, a fixed batch axis, wrong output
names or shapes, or non-finite outputs; ExportError if ORT cannot load/run the graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import ExportError, ParityError
from ..ort_session import cpu_session
from .onnx_graphs import Graph, symbolic_batch


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float

    def __str__(self) -> str:
        return f"atol={self.atol:g} + rtol={self.rtol:g}*|torch|"


FP32_TOLERANCE = Tolerance(atol=1e-4, rtol=1e-4)
FP16_TOLERANCE = Tolerance(atol=1e-2, rtol=1e-2)
SEED = 1234


@dataclass(frozen=True)
class ParityReport:
    role: str
    batches: tuple[int, ...]
    max_abs_diff: float
    tolerance: Tolerance


def parity_batches(max_batch: int) -> tuple[int, ...]:
    """Batch 1, an odd batch (7 or the largest odd <= max_batch), and max_batch, deduplicated."""
    odd = 7 if max_batch >= 7 else (max_batch if max_batch % 2 else max_batch - 1)
    return tuple(sorted({1, max(odd, 1), max_batch}))


def check_parity(graph: Graph, module: nn.Module, *, max_batch: int,
                 tolerance: Tolerance | None = None) -> ParityReport:
    """Compare ORT and torch on ``graph`` (see module doc). Returns the report; raises ParityError."""
    tol = tolerance or (FP16_TOLERANCE if graph.fp16 else FP32_TOLERANCE)
    fixed = [n for n, ok in symbolic_batch(graph.proto).items() if not ok]
    if fixed:
        raise ParityError(f"the {graph.role} graph has a fixed batch axis on {fixed}; expected a symbolic "
                          "(dynamic) first dimension on every input and output")
    try:
        sess = cpu_session(graph.serialize())
    except Exception as e:  # noqa: BLE001 - ORT raises its own exception types
        raise ExportError(f"ONNX Runtime cannot load the exported {graph.role}: {e}") from e
    got_in = [i.name for i in sess.get_inputs()]
    got_out = [o.name for o in sess.get_outputs()]
    if got_in != [graph.input_name] or got_out != list(graph.output_names):
        raise ParityError(f"the {graph.role} graph has inputs {got_in} and outputs {got_out}; expected "
                          f"[{graph.input_name!r}] and {list(graph.output_names)}")
    rng = np.random.default_rng(SEED)
    worst = 0.0
    batches = parity_batches(max_batch)
    for n in batches:
        shape = (n, *graph.input_shape)
        feed = (rng.random(shape) if graph.role != "decoder" else rng.standard_normal(shape)).astype(np.float32)
        try:
            outs = sess.run(None, {graph.input_name: feed})
        except Exception as e:  # noqa: BLE001
            raise ExportError(f"ONNX Runtime failed to run the {graph.role} at batch {n}: {e}") from e
        with torch.no_grad():
            ref = module(torch.from_numpy(feed))
        refs = [t.numpy() for t in (ref if isinstance(ref, tuple) else (ref,))]
        for name, got, want in zip(graph.output_names, outs, refs):
            if got.shape != (n, *graph.output_shape) or got.shape != want.shape:
                raise ParityError(f"{graph.role} output {name!r} at batch {n} has shape {got.shape} in ONNX "
                                  f"Runtime and {want.shape} in torch; expected {(n, *graph.output_shape)}")
            if not np.all(np.isfinite(got)):
                raise ParityError(f"{graph.role} output {name!r} at batch {n} has NaN/Inf in ONNX Runtime")
            diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
            worst = max(worst, float(diff.max()))
            bound = tol.atol + tol.rtol * np.abs(want.astype(np.float64))
            if np.any(diff > bound):
                i = int(np.argmax(diff - bound))
                raise ParityError(
                    f"parity gate failed for the {graph.role} output {name!r} at batch {n}: max abs diff "
                    f"{float(diff.max()):.3g} (worst element {i}: onnx {got.flat[i]:.6g} vs torch "
                    f"{want.flat[i]:.6g}) exceeds the {'fp16' if graph.fp16 else 'fp32'} tolerance {tol}")
    return ParityReport(graph.role, batches, worst, tol)
