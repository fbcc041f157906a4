"""benchmarks/perf_table.py runs end to end on a small n and prints every ratio row with its target."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_perf_table_small_run(tmp_path):
    out = tmp_path / "perf.json"
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "perf_table.py"), "--no-triton",
                          "--models", "mnist_ae2,mnist_vae", "--big", "512", "--seconds", "0.05", "--block", "4", "--out", str(out)],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    text = res.stdout
    # FLOPs of the function the shipped conv decoder computes: latent 16 -> 256 -> 64x7x7, then two
    # ConvTranspose k4 s2 (64->32 at 7x7 in, 32->1 at 14x14 in): 5.03 MFLOP, although the exported
    # phase-space Convs (aeserve.export.phase_conv) execute 4x the second layer's work
    dec_mflop = 2 * (16 * 256 + 256 * 3136 + 64 * 32 * 16 * 49 + 32 * 1 * 16 * 196) / 1e6
    for row in ("mnist_ae2 client/bare generate(1)", "mnist_vae client/bare generate(512)",
                f"mnist_vae decoder share of SGEMM peak ({dec_mflop:.2f} MFLOP)", "conv decoder time by operator",
                "load average", "mnist_vae client/bare-mixture generate(16)", "mnist_vae client-standard/bare generate(1)"):
        assert row in text, text
    data = json.loads(out.read_text())
    assert data["block"] == 4 and "blocks of 4 calls" in text
    g = data["models"]["mnist_ae2"]["graphs"]["encoder"]
    assert abs(g["mflop_per_image"] - 2 * (784 * 512 + 512 * 256 + 256 * 2) / 1e6) < 1e-9   # hidden 512,256, latent 2
    mix = data["models"]["mnist_vae"]["client_bare"]["16"]
    assert mix["ratio_mixture"] == pytest.approx(mix["client_per_s"] / mix["bare_mixture_per_s"]) and mix["ratio_mixture"] > 0
    assert mix["ratio_standard"] == pytest.approx(mix["client_standard_per_s"] / mix["bare_per_s"])
    assert "ratio_standard" not in data["models"]["mnist_ae2"]["client_bare"]["16"]   # not a VAE: no standard prior
    assert "mnist_ae2 client-standard/bare" not in text
    assert "ConvTranspose" not in data["op_shares"] and abs(sum(data["op_shares"].values()) - 1) < 1e-9
