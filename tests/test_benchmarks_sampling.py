"""benchmarks/sampling.py times every step it names, for the aeserve it imports, and writes them as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import aeserve

ROOT = Path(__file__).resolve().parent.parent


def test_sampling_small_run(tmp_path):
    out = tmp_path / "sampling.json"
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sampling.py"), "--models", "mnist_ae2",
                          "--calls", "5", "--rounds", "1", "--out", str(out)],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads(out.read_text())
    assert Path(data["aeserve"]).resolve() == Path(aeserve.__file__).resolve().parent   # the one this test imports
    rows = data["models"]["mnist_ae2"]
    for name in ("noise(1)", "sample(16, label)", "log_density(256)", "run(1)", "sample(1) then run(1)",
                 "65536 rows in draws of 4096",
                 "busy(sample's time) then run(1)", "sample(1) right after a run(1)"):
        assert rows[name] > 0 and f"mnist_ae2    {name}" in res.stdout, name


def test_sampling_refuses_a_model_without_prior(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sampling.py"), "--models", "mnist_sr4",
                          "--calls", "2", "--rounds", "1"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert res.returncode != 0 and "mnist_sr4 has no fitted prior" in res.stderr


def test_sampling_baseline_times_both_checkouts_alongside(tmp_path):
    """``--baseline`` loads a second checkout's aeserve beside this one (here: this same
    checkout, so the two must draw the same numbers, which the script checks)."""
    out = tmp_path / "vs.json"
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sampling.py"), "--models", "mnist_ae2",
                          "--calls", "5", "--rounds", "1", "--baseline", str(ROOT), "--out", str(out)],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads(out.read_text())
    assert Path(data["baseline"]).resolve() == ROOT / "aeserve" and "medians of 9 alternating rounds" in res.stdout
    for name in ("noise(1)", "sample(1)", "noise(16)", "sample(16)"):
        row = data["models"]["mnist_ae2"][name]
        assert row["now_us"] > 0 and row["baseline_us"] > 0 and f"mnist_ae2    {name}" in res.stdout
