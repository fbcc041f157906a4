"""benchmarks/one_class_screen.py: one JSON line per class, with the seed ensemble's AUROC when asked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_screen_reports_each_member_and_the_ensemble(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "one_class_screen.py"), "mnist", "1",
                          "--epochs", "1", "--members", "2"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    row = json.loads(res.stdout.strip().splitlines()[-1])
    assert row["class"] == 1 and row["epochs"] == 1
    assert len(row["members"]) == 2 and row["members"][0] == row["combined"]   # member 0 is the seed-0 model
    assert row["members"][0] != row["members"][1]                              # two seeds, two models
    assert set(row["ensemble"]) == {"2"} and 90 < row["ensemble"]["2"] <= 100   # ones are easy even after 1 epoch
    assert all(90 < row[k] <= 100 for k in ("mse", "combined"))
