"""Compression operations of ``aeserve.Client``: compress and its mirror decompress."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import PayloadError
from .base import ClientBase


class CompressionOps(ClientBase):
    """Images <-> self-describing byte payloads of entropy-coded latents."""

    def compress(self, x: Any, *, bits: int | None = None) -> bytes:
        """Images -> a self-describing byte payload (quantized, entropy-coded latents, checksummed).

        ``bits`` per latent dimension (default ``compress.DEFAULT_BITS``) trades bytes for PSNR.
        """
        from .. import compress

        z = self.encode(x)
        return compress.encode_payload(z, model=self.model, version=self._info.version, card=self.card,
                                       bits=compress.DEFAULT_BITS if bits is None else bits)

    def decompress(self, blob: bytes) -> np.ndarray:
        """Payload from ``compress`` -> images ``(N, C, H, W)``. PayloadError if the payload is
        corrupt, truncated, foreign or made by another model/version; SizeLimitError (before
        decoding anything) if it declares more images than the Client's ``limits`` allow,
        absolutely or for its size."""
        from .. import compress

        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise PayloadError(f"payload must be bytes (from Client.compress), got {type(blob).__name__}")
        header = compress.peek_header(bytes(blob))
        self._limits.check_payload(header.n, header.n * (self.image_bytes + 12 * header.latent_dim), len(blob))
        z = compress.decode_payload(bytes(blob), model=self.model, version=self._info.version, card=self.card)
        return self.decode(z)

    def compress_each(self, x: Any, *, bits: int | None = None) -> list[bytes]:
        """One self-contained payload per image (``compress(x[i:i+1])`` for each i), from one
        batched encode: what a table with a payload column per row needs."""
        from .. import compress

        z = self.encode(x)
        b = compress.DEFAULT_BITS if bits is None else bits
        return [compress.encode_payload(z[i:i + 1], model=self.model, version=self._info.version, card=self.card,
                                        bits=b) for i in range(len(z))]
