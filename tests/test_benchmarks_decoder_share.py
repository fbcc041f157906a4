"""benchmarks/decoder_share.py counts the original decoder's FLOPs, not the rewritten graph's extra work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_decoder_share_small_run_counts_the_original_function(tmp_path):
    out = tmp_path / "share.json"
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "decoder_share.py"), "--models", "mnist_vae",
                          "--big", "512", "--rounds", "1", "--baseline", str(ROOT / "model_repository"), "--out", str(out)],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "mnist_vae shipped" in res.stdout and "shipped/baseline speed" in res.stdout and "load average" in res.stdout
    r = json.loads(out.read_text())["models"]["mnist_vae"]["repos"]["shipped"]
    dense = 16 * 256 + 256 * 64 * 7 * 7                       # latent 16 -> 256 -> 64x7x7
    original = dense + 64 * 32 * 16 * 7 * 7 + 32 * 1 * 16 * 14 * 14   # the two ConvTranspose layers (k4 s2 p1)
    rewritten = dense + 4 * (64 * 32 * 4 * 49) + 4 * (32 * 16 * 4 * 49)  # 4 phase Convs each, the 2nd 4x the work
    assert abs(r["original_mflop"] - 2 * original / 1e6) < 1e-9
    assert abs(r["counted_mflop"] - 2 * rewritten / 1e6) < 1e-9
    assert 0 < r["2x1"]["share"] and 0 < r["1x2"]["share"]
