"""How tests/data/compress_v1_*.aez were made, ONCE, with the compress format of 2026-12-02
(format version 1), from the latents in compress_v1_inputs.npz. They are committed as bytes
and must keep decoding: do not re-run this to "fix" a failing test
(tests/test_compress_format_freeze.py) - a failure means old payloads no longer decode.
The shipped card was mnist_vae version 1's; that model ships now as mnist_vae_beta1.

    python tests/data/make_compress_payloads.py     # writes tests/data/compress_v1_*
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aeserve.card import ModelCard
from aeserve.compress import encode_payload, peek_header
from aeserve.repository import Repository

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


PAYLOADS = {  # file -> (input key, model, card, bits); chosen so every coder appears
    "compress_v1_mnist_vae_bits7.aez": ("shipped16", "mnist_vae", "shipped", 7),     # rans-card
    "compress_v1_mnist_vae_bits16.aez": ("shipped16", "mnist_vae", "shipped", 16),   # raw
    "compress_v1_toy_bits6.aez": ("toy40", "toy", "toy", 6),                          # zlib, range in header
    "compress_v1_toy_bits14.aez": ("toy400", "toy", "toy", 14),                       # lzma
    "compress_v1_toy_bits8.aez": ("gauss400", "toy", "toy", 8),                       # rans-fit
}
TOY = ModelCard("vae", "mlp", (1, 8, 8), 4, "bernoulli", "toy", {})
TOY_VERSION = 3


def main() -> None:
    m = Repository(ROOT / "model_repository").model("mnist_vae_beta1")
    cards = {"shipped": (m.card, 1), "toy": (TOY, TOY_VERSION)}
    mean, std = np.asarray(m.card.get_json("latent.mean")), np.asarray(m.card.get_json("latent.std"))
    rng = np.random.default_rng(20261202)
    i, j = np.meshgrid(np.arange(400), np.arange(4), indexing="ij")
    inputs = {
        "shipped16": (mean + std * rng.standard_normal((16, 16))).astype(np.float32),
        "toy40": np.sin(1.3 * i[:40] + 0.7 * j[:40]).astype(np.float32),
        "toy400": np.sin(1.3 * i + 0.7 * j).astype(np.float32),
        "gauss400": rng.standard_normal((400, 4)).astype(np.float32),
    }
    np.savez(HERE / "compress_v1_inputs.npz", **inputs)
    for name, (key, model, which, bits) in PAYLOADS.items():
        card, version = cards[which]
        blob = encode_payload(inputs[key], model=model, version=version, card=card, bits=bits)
        (HERE / name).write_bytes(blob)
        print(name, peek_header(blob))


if __name__ == "__main__":
    main()
