"""One-class AUROC of trained one-class models by reconstruction MSE, prior density and both.

    aeserve eval --one-class mnist --train --one-class-repo out/one_class     # trains the models
    python benchmarks/one_class_density.py mnist out/one_class 0,1,2,3

For each class c, fits a prior to the codes of the class's training images
(``aeserve.prior_fit.fit_model_prior``, unlabelled, kept in memory: the repository is not
changed) and prints the AUROC (percent) of ``anomaly_score`` with methods mse, density and
combined on the whole test split (the other classes are the anomalies).
"""

from __future__ import annotations

import argparse
import json
import sys

import aeserve
from aeserve.data import load_dataset
from aeserve.eval.one_class import model_name
from aeserve.metrics import auroc
from aeserve.prior_fit import fit_model_prior

METHODS = ("mse", "density", "combined")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("repo")
    ap.add_argument("classes", help="comma-separated, e.g. 0,1,2,3")
    a = ap.parse_args(argv)
    test = load_dataset(a.dataset, "test")
    rows = {}
    for c in (int(v) for v in a.classes.split(",")):
        with aeserve.Client(repository=a.repo, model=model_name(a.dataset, c)) as client:
            entries, report = fit_model_prior(client, a.dataset, classes=[c], labelled=False)
            client.card = client.card.with_extra(**entries)
            rows[c] = {m: round(100 * auroc(client.anomaly_score(test.x, method=m), test.y != c), 2) for m in METHODS}
            rows[c]["components"] = report["components"]
        print(c, json.dumps(rows[c]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
