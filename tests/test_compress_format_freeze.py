"""The compress format is frozen: payloads written ONCE (tests/data/compress_v1_*.aez, made by
tests/data/make_compress_payloads.py with the format of 2026-12-02) must keep decoding.

The expected values are not this code's output: they are the latents the payloads were made
from (compress_v1_inputs.npz) and the format's documented quantization rule (uniform levels
over the card's latent.min/max widened by 5% of the span, or over the header's range), so a
decoded latent must lie within half a quantization step of its input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import aeserve
from aeserve.card import ModelCard
from aeserve.compress import decode_payload, peek_header
from aeserve.errors import PayloadError
from aeserve.repository import Repository

DATA = Path(__file__).resolve().parent / "data"
TOY = ModelCard("vae", "mlp", (1, 8, 8), 4, "bernoulli", "toy", {})
# The mnist_vae payloads were made by mnist_vae version 1, whose weights and card ship now as
# mnist_vae_beta1 (mnist_vae version 2 is a retrained model).
MADE_BY, MADE_BY_VERSION, SHIPPED_AS = "mnist_vae", 1, "mnist_vae_beta1"
# file -> (input key, model, version, bits, coder, range stored in the header)
FROZEN = {
    "compress_v1_mnist_vae_bits7.aez": ("shipped16", MADE_BY, MADE_BY_VERSION, 7, "rans-card", False),
    "compress_v1_mnist_vae_bits16.aez": ("shipped16", MADE_BY, MADE_BY_VERSION, 16, "raw", False),
    "compress_v1_toy_bits6.aez": ("toy40", "toy", 3, 6, "raw", True),
    "compress_v1_toy_bits14.aez": ("toy400", "toy", 3, 14, "lzma", True),
    "compress_v1_toy_bits8.aez": ("gauss400", "toy", 3, 8, "rans-fit", True),
}


@pytest.fixture(scope="module")
def inputs() -> dict[str, np.ndarray]:
    with np.load(DATA / "compress_v1_inputs.npz") as f:
        return {k: f[k] for k in f.files}


def _range(z: np.ndarray, card: ModelCard, in_header: bool) -> tuple[np.ndarray, np.ndarray]:
    if in_header:                                   # the data's own min/max, per dimension
        return z.min(axis=0).astype(np.float64), z.max(axis=0).astype(np.float64)
    mn, mx = np.asarray(card.get_json("latent.min")), np.asarray(card.get_json("latent.max"))
    return mn - 0.05 * (mx - mn), mx + 0.05 * (mx - mn)


@pytest.mark.parametrize("name", sorted(FROZEN))
def test_frozen_payload_decodes_to_its_latents(name, inputs, shipped_repository):
    key, model, version, bits, coder, in_header = FROZEN[name]
    blob = (DATA / name).read_bytes()
    card = TOY
    if model == MADE_BY:
        m = Repository(shipped_repository).model(SHIPPED_AS)
        card = m.card
        assert m.versions == (version,)
    z = inputs[key]
    h = peek_header(blob)
    assert (h.model, h.version, h.n, h.latent_dim, h.bits, h.coder, h.range_in_header) == \
        (model, version, len(z), z.shape[1], bits, coder, in_header)
    got = decode_payload(blob, model=model, version=version, card=card)
    lo, hi = _range(z, card, in_header)
    half_step = (hi - lo) / (2 ** bits - 1) / 2
    err = np.abs(got.astype(np.float64) - np.clip(z, lo, hi))
    assert got.shape == z.shape and np.all(err <= half_step * (1 + 1e-5) + 1e-6), float((err / half_step).max())
    with pytest.raises(PayloadError):                # one flipped byte: refused, never decoded
        decode_payload(blob[:-5] + bytes([blob[-5] ^ 1]) + blob[-4:], model=model, version=version, card=card)


def test_frozen_payload_is_refused_by_a_newer_version_of_its_model(shipped_repository):
    blob = (DATA / "compress_v1_mnist_vae_bits16.aez").read_bytes()
    with aeserve.Client(repository=shipped_repository, model=MADE_BY) as c:
        assert c.version != MADE_BY_VERSION
        with pytest.raises(PayloadError, match=rf"made by model '{MADE_BY}' version {MADE_BY_VERSION}"):
            c.decompress(blob)


def test_frozen_payload_decodes_to_the_images_of_its_latents(inputs, shipped_repository):
    card = Repository(shipped_repository).model(SHIPPED_AS).card
    z = decode_payload((DATA / "compress_v1_mnist_vae_bits16.aez").read_bytes(), model=MADE_BY,
                       version=MADE_BY_VERSION, card=card)
    with aeserve.Client(repository=shipped_repository, model=SHIPPED_AS) as c:
        x, direct = c.decode(z), c.decode(inputs["shipped16"])
    assert x.shape == (16, 1, 28, 28)
    np.testing.assert_allclose(x, direct, atol=2e-3)   # 16 bits/dim: the images of the stored latents
