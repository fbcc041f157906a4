"""Generation quality and speed of the shipped models, per prior, judged by the project's classifiers.

    python benchmarks/generation.py                      # all shipped models -> benchmarks/results/generation.json
    python benchmarks/generation.py --models mnist_vae --n 10000 --url grpc://localhost:8001

For each model and each prior it can use ("fitted" mixture from the card; "standard"
N(0, I) for VAEs) it draws ``n`` samples with the default ``generate`` settings (seed 0,
temperature 1) and reports, next to the same figures for the real test images:

- confident share: classifier max-probability >= 0.9 (``aeserve.eval.generation``), and its
  ratio to the real test images' share;
- label entropy in bits of the predicted-label histogram (log2 10 = 3.32 is uniform);
- memorisation: mean L2 distance (pixels in [0, 1]) from each of ``nn_n`` samples to its
  nearest training image, divided by the same mean for ``nn_n`` real test images; the same
  ratio for the model's reconstructions of those test images is given for scale (decoded
  images are smooth, which alone moves them closer to training images);
- class-conditional accuracy: share of ``generate(label=k)`` samples classified as k;
- throughput: images/s of ``generate`` with each prior, measured in this one run.
Targets live here, not in the package.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import aeserve
from aeserve.classifier import Classifier, default_classifier_path
from aeserve.data import load_dataset
from aeserve.fileio import write_bytes_atomic
from aeserve.metrics import confident_share

TARGETS = {"confident_ratio": {"mnist": 0.95, "fashion-mnist": 0.90}, "label_entropy_bits": 3.25,
           "nn_ratio": 0.9, "label_accuracy": 0.95}
CONFIDENCE = 0.9
RESULTS = Path(__file__).resolve().parent / "results" / "generation.json"


def entropy_bits(labels: np.ndarray) -> float:
    p = np.bincount(labels, minlength=10) / len(labels)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def nn_distance(x: np.ndarray, train: np.ndarray, train_sq: np.ndarray) -> float:
    """Mean distance from each row of ``x`` to its nearest row of ``train`` (both flattened)."""
    a = x.reshape(len(x), -1).astype(np.float32)
    best = []
    for i in range(0, len(a), 250):
        b = a[i:i + 250]
        d = (b ** 2).sum(1)[:, None] + train_sq[None] - 2.0 * b @ train.T
        best.append(np.sqrt(np.maximum(d.min(1), 0.0)))
    return float(np.concatenate(best).mean())


def throughput(c, priors: list[str], n: int, repeats: int = 3, label: int | None = None) -> dict[str, float]:
    """Best images/s of ``generate(n)`` per prior (and, with ``label``, of ``generate(n, label=label)``
    as "labelled"), interleaved round by round (so a load change on the shared machine hits all alike)."""
    calls = {prior: lambda k, seed, prior=prior: c.generate(k, seed=seed, prior=prior) for prior in priors}
    if label is not None:
        calls["labelled"] = lambda k, seed: c.generate(k, seed=seed, label=label)
    best = dict.fromkeys(calls, 0.0)
    for call in calls.values():
        call(256, 1)  # warm up the sessions
    for r in range(repeats):
        for name, call in calls.items():
            t = time.perf_counter()
            call(n, r)
            best[name] = max(best[name], n / (time.perf_counter() - t))
    return best


def measure(c, n: int, nn_n: int, speed_n: int, labels_n: int) -> dict:
    ds = c.card.dataset
    clf = Classifier(default_classifier_path(ds))
    test, train = load_dataset(ds, "test"), load_dataset(ds, "train")
    flat = train.x.reshape(len(train.x), -1)
    flat_sq = (flat ** 2).sum(1)
    real = clf.predict(test.x)
    real_conf = confident_share(real.probs, CONFIDENCE)
    nn_real = nn_distance(test.x[:nn_n], flat, flat_sq)
    out = {"model": c.model, "dataset": ds, "n": n, "real_test": {
        "confident_share": real_conf, "label_entropy_bits": entropy_bits(real.labels),
        "nn_distance": nn_real,
        "reconstruction_nn_ratio": nn_distance(c.reconstruct(test.x[:nn_n]), flat, flat_sq) / nn_real}}
    priors = (["fitted"] if c.prior is not None else []) + (["standard"] if c.card.is_vae else [])
    labelled = c.prior is not None and bool(c.prior.classes)
    speed = throughput(c, priors, speed_n, label=c.prior.classes[0] if labelled else None)
    for prior in priors:
        g = np.clip(c.generate(n, seed=0, prior=prior), 0.0, 1.0)
        pred = clf.predict(g)
        conf = confident_share(pred.probs, CONFIDENCE)
        row = {"confident_share": conf, "confident_ratio": conf / real_conf,
               "label_entropy_bits": entropy_bits(pred.labels),
               "label_histogram": np.bincount(pred.labels, minlength=10).tolist(),
               "nn_ratio": nn_distance(g[:nn_n], flat, flat_sq) / nn_real,
               "images_per_s": speed[prior]}
        if prior == "fitted" and c.prior.classes:
            acc = {str(k): float(np.mean(clf.predict(np.clip(c.generate(labels_n, seed=0, label=k), 0, 1)).labels == k))
                   for k in c.prior.classes}
            row["label_accuracy"] = acc
            row["label_accuracy_mean"] = float(np.mean(list(acc.values())))
            row["labelled_images_per_s"] = speed["labelled"]
        out[prior] = row
    return out


def check(report: dict) -> list[str]:
    lines = []
    for r in report["models"]:
        f = r.get("fitted")
        if f is None:
            continue
        want = TARGETS["confident_ratio"].get(r["dataset"])
        for name, value, target in (("confident_ratio", f["confident_ratio"], want),
                                    ("label_entropy_bits", f["label_entropy_bits"], TARGETS["label_entropy_bits"]),
                                    ("nn_ratio", f["nn_ratio"], TARGETS["nn_ratio"]),
                                    ("label_accuracy_min", min(f.get("label_accuracy", {"-": 1.0}).values()),
                                     TARGETS["label_accuracy"])):
            if target is not None:
                lines.append(f"{r['model']} fitted {name} {value:.3f} (target >= {target}): "
                             f"{'met' if value >= target else 'missed'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mnist_vae,fashion_vae,mnist_dae,mnist_ae2")
    ap.add_argument("--url", default=None)
    ap.add_argument("--repo", default=None)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--nn-n", type=int, default=1000)
    ap.add_argument("--speed-n", type=int, default=16384)
    ap.add_argument("--labels-n", type=int, default=1000)
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    started = time.perf_counter()
    rows = []
    with aeserve.Client(a.url, repository=a.repo) as first:
        for name in a.models.split(","):
            with first.with_model(name) as c:
                rows.append(measure(c, a.n, a.nn_n, a.speed_n, a.labels_n))
                print(json.dumps({k: v for k, v in rows[-1].items()}, default=float)[:600], file=sys.stderr)
    report = {"models": rows, "targets": TARGETS, "seconds": round(time.perf_counter() - started, 1),
              "command": "python benchmarks/generation.py " + " ".join(argv or sys.argv[1:])}
    report["checks"] = check(report)
    write_bytes_atomic(a.out, (json.dumps(report, indent=1) + "\n").encode())
    print("\n".join(report["checks"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
