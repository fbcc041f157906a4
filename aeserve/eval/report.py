"""Evaluation reports: published anchors, a plain-text table, atomic JSON files.

    from aeserve.eval.report import format_table, write_json
    print(format_table(report))            # one line per metric, grouped by section
    write_json(report, "report.json")      # strict JSON, written atomically

A report is a dict ``{"model", "target", "data", "sections": {name: {...}}, ...}``.
Non-finite floats (an identity reconstruction's PSNR) are written as the strings
``"inf"``, ``"-inf"``, ``"nan"`` so that the file is strict JSON.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import write_bytes_atomic

#: published figures a report is read against (pixels in [0, 1]); the project's own pass/fail
#: targets for the shipped models live in ``benchmarks/targets.py``, not in the library.
ANCHORS: dict[str, dict[str, Any]] = {
    "pca_mse_mnist": {"k=2": 0.0557, "k=16": 0.0269, "k=32": 0.0168,
                      "source": "PCA reconstruction MSE on MNIST test"},
    "pca_denoise_sigma0.5_db": {"pca": 15.2, "noisy_input": 9.4, "source": "PCA denoiser on MNIST at sigma 0.5"},
    "one_class_auroc_mnist_pct": {"deep_svdd": 94.8, "pca_k32": 95.5, "source": "Ruff et al. 2018; PCA k=32"},
    "vae_nll_binarized_mnist_nats": {"vae": 86.76, "iwae_k50": 84.78, "source": "Burda et al. 2016"},
    "compression_mnist_bytes_per_image": {"png": 268, "webp_lossless": 200, "webp_lowest": 145,
                                          "webp_lowest_psnr_db": 29.5},
}


def jsonable(obj: Any) -> Any:
    """Recursively convert numpy scalars/arrays, tuples and Paths; non-finite floats -> strings."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        if math.isfinite(f):
            return f
        return "nan" if math.isnan(f) else ("inf" if f > 0 else "-inf")
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(report: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``report`` as indented strict JSON to ``path`` atomically (temp file + rename)."""
    text = json.dumps(jsonable(report), indent=2, allow_nan=False) + "\n"
    return write_bytes_atomic(path, text.encode())


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not math.isfinite(f):
            return str(f)
        if f != 0 and (abs(f) < 1e-3 or abs(f) >= 1e5):
            return f"{f:.3e}"
        return f"{f:.4f}" if abs(f) < 1 else f"{f:.2f}"
    return str(v)


def _rows(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _rows(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, (list, tuple)) and value and isinstance(value[0], dict):
        return  # long per-row tables (codec sweeps) are printed by their own section formatter
    elif isinstance(value, (list, tuple)):
        out.append((prefix, "[" + ", ".join(_fmt(v) for v in value) + "]"))
    else:
        out.append((prefix, _fmt(value)))


def format_table(report: dict[str, Any]) -> str:
    """The report as aligned ``section  metric  value`` lines (plus the codec table if present)."""
    head = [f"model  {report.get('model')}   target  {report.get('target')}",
            f"data   {report.get('data', {}).get('name')} {report.get('data', {}).get('split')} "
            f"n={report.get('data', {}).get('n')}"]
    rows: list[tuple[str, str, str]] = []
    for section, body in report.get("sections", {}).items():
        flat: list[tuple[str, str]] = []
        _rows("", body, flat)
        rows += [(section, k, v) for k, v in flat]
    w1 = max([len(r[0]) for r in rows] + [7])
    w2 = max([len(r[1]) for r in rows] + [6])
    lines = head + ["", f"{'section':<{w1}}  {'metric':<{w2}}  value", "-" * (w1 + w2 + 20)]
    last = None
    for s, k, v in rows:
        lines.append(f"{s if s != last else '':<{w1}}  {k:<{w2}}  {v}")
        last = s
    codecs = report.get("sections", {}).get("compression", {}).get("rate_distortion")
    if codecs:
        lines += ["", format_codec_table(codecs)]
    return "\n".join(lines)


def format_codec_table(rows: list[dict[str, Any]]) -> str:
    """``codec  setting  bytes/image  PSNR dB`` lines for the compression comparison."""
    lines = [f"{'codec':<16}{'setting':<12}{'bytes/image':>12}{'PSNR dB':>10}", "-" * 50]
    for r in rows:
        lines.append(f"{r['codec']:<16}{str(r['setting']):<12}{r['bytes_per_image']:>12.1f}{_fmt(r['psnr']):>10}")
    return "\n".join(lines)
