"""Quality and speed measurements of served models (``aeserve eval``, ``aeserve bench``).

    from aeserve.eval import evaluate, format_table, write_json
    report = evaluate("mnist_vae", limit=1000)           # through aeserve.Client (embedded or Triton)
    print(format_table(report))
    write_json(report, "report.json")                     # atomic, strict JSON

Modules: ``core`` (evaluate), ``reconstruction`` (MSE/PSNR, denoising, PCA baseline),
``likelihood`` (ELBO, IWAE), ``one_class`` (anomaly protocol), ``generation``
(classifier-based), ``compression`` (vs PNG/WebP/JPEG), ``throughput`` (benchmarks),
``report`` (table, JSON, published anchors). Metrics themselves are in ``aeserve.metrics``.
"""

from __future__ import annotations

from .core import SECTIONS, evaluate, evaluate_one_class
from .report import ANCHORS, format_table, write_json

__all__ = ["ANCHORS", "SECTIONS", "evaluate", "evaluate_one_class", "format_table", "write_json"]
