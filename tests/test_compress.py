"""Tests for aeserve.compress: exact round trips, every coder, every corruption mode."""

from __future__ import annotations

import hashlib
import struct
import zlib

import numpy as np
import pytest

from aeserve.card import ModelCard
from aeserve.compress import (
    CODERS,
    DEFAULT_BITS,
    FORMAT_VERSION,
    MAGIC,
    decode_payload,
    dequantize,
    encode_payload,
    peek_header,
    quantization_range,
    quantize,
)
from aeserve.errors import InputError, PayloadError

DIM = 16


def _card(with_stats: bool = True, seed: int = 0, dim: int = DIM) -> ModelCard:
    card = ModelCard("vae", "mlp", (1, 28, 28), dim, "bernoulli", "mnist", {"name": "mnist_vae"})
    if not with_stats:
        return card
    z = _latents(20_000, seed=seed, dim=dim)
    return card.with_extra(**{"latent.min": z.min(0), "latent.max": z.max(0),
                              "latent.mean": z.mean(0), "latent.std": z.std(0)})


def _latents(n: int, seed: int = 1, dim: int = DIM) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = np.linspace(0.2, 1.2, dim)
    return (rng.standard_normal((n, dim)) * scale + np.linspace(-0.5, 0.5, dim)).astype(np.float32)


CARD = _card()
BARE = _card(with_stats=False)


def _mirror(z: np.ndarray, card: ModelCard, bits: int) -> np.ndarray:
    rng = quantization_range(card)
    if rng is None:
        lo, hi = z.min(0).astype(np.float32), z.max(0).astype(np.float32)
    else:
        lo, hi = rng
    return dequantize(quantize(z, lo, hi, bits), lo, hi, bits)


@pytest.mark.parametrize("card", [CARD, BARE], ids=["card-stats", "bare-card"])
@pytest.mark.parametrize("n", [1, 3, 9, 500])
@pytest.mark.parametrize("bits", [1, 4, 8, 12, 16])
def test_exact_mirror_of_quantization(card, n, bits):
    z = _latents(n, seed=n * 31 + bits)
    blob = encode_payload(z, model="mnist_vae", version=3, card=card, bits=bits)
    out = decode_payload(blob, model="mnist_vae", version=3, card=card)
    assert out.dtype == np.float32 and out.shape == (n, DIM)
    assert np.array_equal(out, _mirror(z, card, bits))
    h = peek_header(blob)
    assert (h.model, h.version, h.n, h.latent_dim, h.bits, h.nbytes) == ("mnist_vae", 3, n, DIM, bits, len(blob))
    assert h.range_in_header == (card is BARE)


def test_every_coder_is_reachable_and_decodes():
    seen = {}
    cases = [(_latents(1), CARD, 8), (_latents(2000), CARD, 8), (_latents(2000), BARE, 8),
             (_latents(2000), CARD, 16), (np.zeros((4000, DIM), np.float32), BARE, 8)]
    for z, card, bits in cases:
        blob = encode_payload(z, model="m", version=1, card=card, bits=bits)
        seen[peek_header(blob).coder] = True
        assert np.array_equal(decode_payload(blob, model="m", version=1, card=card), _mirror(z, card, bits))
    assert set(seen) >= {"raw", "rans-card", "rans-fit", "lzma", "zlib"}, seen
    assert set(seen) <= set(CODERS)


def test_quantization_error_is_half_a_step_inside_the_range():
    z = _latents(5000, seed=9)
    lo, hi = quantization_range(CARD)
    inside = np.all((z >= lo) & (z <= hi), axis=1)
    out = decode_payload(encode_payload(z, model="m", version=1, card=CARD), model="m", version=1, card=CARD)
    step = (hi.astype(np.float64) - lo) / (2**DEFAULT_BITS - 1)
    assert np.all(np.abs(out[inside] - z[inside]) <= step / 2 + 1e-6)


def test_size_per_item_is_small():
    z = _latents(10_000, seed=5)
    blob = encode_payload(z, model="mnist_vae", version=1, card=CARD, bits=8)
    assert len(blob) / 10_000 < 15.0  # 16 dims at 8 bits, entropy-coded below 1 byte per value
    # one item: 12 bytes of header + the name, at most 1 byte per value, 4 bytes CRC
    assert len(encode_payload(z[:1], model="mnist_vae", version=1, card=CARD)) <= 12 + 9 + 16 + 4


def test_wrong_model_or_version_names_both():
    blob = encode_payload(_latents(4), model="mnist_vae", version=2, card=CARD)
    with pytest.raises(PayloadError, match=r"'mnist_vae' version 2.*'fashion_vae' version 2"):
        decode_payload(blob, model="fashion_vae", version=2, card=CARD)
    with pytest.raises(PayloadError, match=r"'mnist_vae' version 2.*'mnist_vae' version 1"):
        decode_payload(blob, model="mnist_vae", version=1, card=CARD)


def test_same_name_different_card_is_refused():
    blob = encode_payload(_latents(4), model="mnist_vae", version=1, card=CARD)
    with pytest.raises(PayloadError, match="different model"):
        decode_payload(blob, model="mnist_vae", version=1, card=_card(seed=7))
    with pytest.raises(PayloadError, match="latent_dim"):
        decode_payload(blob, model="mnist_vae", version=1, card=_card(dim=8))


@pytest.mark.parametrize("n,card", [(1, CARD), (300, CARD), (300, BARE)])
def test_every_single_byte_flip_and_truncation_is_caught(n, card):
    blob = encode_payload(_latents(n, seed=3), model="mnist_vae", version=1, card=card)
    for pos in range(len(blob)):
        for mask in (0x01, 0x80, 0xFF):
            bad = bytearray(blob)
            bad[pos] ^= mask
            with pytest.raises(PayloadError):
                decode_payload(bytes(bad), model="mnist_vae", version=1, card=card)
    for cut in range(len(blob)):
        with pytest.raises(PayloadError):
            decode_payload(blob[:cut], model="mnist_vae", version=1, card=card)
    with pytest.raises(PayloadError):
        decode_payload(blob + b"\0", model="mnist_vae", version=1, card=card)


def _recrc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_tampering_behind_a_valid_checksum_never_yields_garbage():
    """A forger who recomputes the CRC still gets PayloadError or a correctly shaped array."""
    rng = np.random.default_rng(0)
    for z, card, bits in [(_latents(100), CARD, 8), (_latents(100), BARE, 8), (_latents(2), CARD, 8),
                          (_latents(100), CARD, 16), (np.zeros((300, DIM), np.float32), BARE, 8)]:
        blob = encode_payload(z, model="m", version=1, card=card, bits=bits)
        for _ in range(80):
            bad = bytearray(blob[:-4])
            pos = int(rng.integers(3, len(bad)))
            bad[pos] = int(rng.integers(0, 256))
            try:
                out = decode_payload(_recrc(bytes(bad)), model="m", version=1, card=card)
            except PayloadError:
                continue
            assert out.dtype == np.float32 and out.ndim == 2 and out.shape[1] == DIM and np.all(np.isfinite(out))


def test_claimed_size_must_match_the_body():
    blob = encode_payload(_latents(300), model="m", version=1, card=CARD)
    h = peek_header(blob)
    # n is the varint after name and version; rewrite it with a bigger value, fix the CRC
    name_end = 7 + len("m")
    forged = bytearray(blob[:-4])
    assert forged[name_end] == 1 and h.n == 300
    forged[name_end + 1:name_end + 3] = b"\xff\x7f"  # n = 16383
    with pytest.raises(PayloadError):
        decode_payload(_recrc(bytes(forged)), model="m", version=1, card=CARD)


def test_foreign_bytes_wrong_magic_and_future_format():
    for junk in (b"", b"AE", b"AEZ", b"\x89PNG\r\n\x1a\n" + bytes(40), bytes(64), np.random.default_rng(0).bytes(200)):
        with pytest.raises(PayloadError):
            decode_payload(junk, model="m", version=1, card=CARD)
        with pytest.raises(PayloadError):
            peek_header(junk)
    with pytest.raises(PayloadError, match="must be bytes"):
        decode_payload("AEZ...", model="m", version=1, card=CARD)
    blob = encode_payload(_latents(3), model="m", version=1, card=CARD)
    assert blob[:3] == MAGIC and blob[3] == FORMAT_VERSION
    future = bytearray(blob[:-4])
    future[3] = FORMAT_VERSION + 1
    with pytest.raises(PayloadError, match=f"format version {FORMAT_VERSION + 1}.*upgrade"):
        decode_payload(_recrc(bytes(future)), model="m", version=1, card=CARD)
    with pytest.raises(PayloadError, match="newer aeserve"):  # future format with an unknown trailer
        decode_payload(bytes(future) + b"\0\0\0\0", model="m", version=1, card=CARD)
    assert np.array_equal(decode_payload(bytearray(blob), model="m", version=1, card=CARD),
                          decode_payload(memoryview(blob), model="m", version=1, card=CARD))


def test_bad_inputs_to_encode():
    z = _latents(4)
    for bad_z in (z[:, :5], z[0], np.zeros((0, DIM)), np.full((2, DIM), np.nan), [["a"] * DIM]):
        with pytest.raises(InputError):
            encode_payload(bad_z, model="m", version=1, card=CARD)
    for bits in (0, 17, 8.0, True):
        with pytest.raises(InputError, match="bits"):
            encode_payload(z, model="m", version=1, card=CARD, bits=bits)
    for model, version in (("", 1), ("x" * 300, 1), ("m", -1), ("m", "1")):
        with pytest.raises(InputError):
            encode_payload(z, model=model, version=version, card=CARD)


def test_card_stats_of_the_wrong_length_fall_back_to_the_header():
    card = BARE.with_extra(**{"latent.min": [0.0, 1.0], "latent.max": [1.0, 2.0]})
    assert quantization_range(card) is None
    z = _latents(5)
    blob = encode_payload(z, model="m", version=1, card=card)
    assert peek_header(blob).range_in_header
    assert np.array_equal(decode_payload(blob, model="m", version=1, card=card), _mirror(z, card, DEFAULT_BITS))


def test_format_is_stable():
    """Golden bytes: a change here breaks every stored payload; bump FORMAT_VERSION instead.
    Inputs are exact rationals and literal card values, so no RNG or libm is involved."""
    state, u = 12345, []
    for _ in range(64 * DIM * 4):  # 32-bit LCG (Numerical Recipes constants)
        state = (1664525 * state + 1013904223) % 2**32
        u.append(state / 2**32)
    z = (np.array(u).reshape(64, DIM, 4).sum(axis=2) - 2.0) * 0.5  # Irwin-Hall: peaked at 0
    card = BARE.with_extra(**{"latent.min": [-1.5] * DIM, "latent.max": [1.5] * DIM,
                              "latent.mean": [0.0] * DIM, "latent.std": [0.28] * DIM})
    blob = encode_payload(z, model="mnist_vae", version=1, card=card, bits=8)
    assert blob[:16] == b"AEZ\x01" + bytes([CODERS.index("rans-card"), 8, 9]) + b"mnist_vae"
    assert (len(blob), hashlib.sha256(blob).hexdigest()[:16]) == GOLDEN
    assert np.array_equal(decode_payload(blob, model="mnist_vae", version=1, card=card), _mirror(z, card, 8))


GOLDEN = (858, "07f88a511945ed05")
