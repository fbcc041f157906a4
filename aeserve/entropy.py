"""Static-model interleaved rANS entropy coder, vectorised in NumPy (no compiled code).

    freqs = gaussian_freqs(mean, std, alphabet=256)     # (dim, 256) int64, rows sum to 2**16
    body = rans_encode(symbols, freqs)                  # symbols (N, dim) ints < 256 -> bytes
    symbols == rans_decode(body, n=N, freqs=freqs)      # raises EntropyError on a bad stream

Symbol ``(i, d)`` (row-major position ``p = i*dim + d``) is coded with the frequency row
``freqs[d]`` in lane ``p % L`` of ``L`` interleaved rANS streams (Duda 2013; Giesen's
interleaving), so every step is one NumPy operation over ``L`` lanes. State 32 bits,
16-bit renormalisation, probabilities quantised to 1/65536. Stream layout::

    varint L | L final states (uint32 LE) | 16-bit words (uint16 LE), in decode order

Decoding checks that every word is consumed and every lane ends in the initial state, so
a damaged stream is detected (beyond the container's CRC). ``gaussian_freqs`` uses only
correctly rounded IEEE operations (its own ``exp``), so encoder and decoder build
bit-identical tables on any machine.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["EntropyError", "gaussian_freqs", "rans_encode", "rans_decode", "PRECISION", "MAX_ALPHABET",
           "lanes_for", "write_varint", "read_varint"]

PRECISION = 16
_M = 1 << PRECISION
_RANS_L = 1 << 16  # lower bound of the normalised state interval [2**16, 2**32)
MAX_ALPHABET = 1 << 12  # every symbol keeps frequency >= 1 of 2**16
_STEPS_TARGET = 1024  # lanes grow so a blob takes about this many vectorised steps
_MIN_LANE_SYMBOLS = 256  # ... but each lane (4 bytes of state) carries at least this many
MAX_LANES = 4096
_EXP_TERMS = [1.0 / math.factorial(k) for k in range(15)]


class EntropyError(ValueError):
    """The coded stream is inconsistent with its length, lane count or frequency tables."""


# ---- varints (also used by the container) -----------------------------------------------
def write_varint(value: int) -> bytes:
    """Unsigned LEB128: ``write_varint(300) == b'\\xac\\x02'``."""
    if value < 0:
        raise ValueError("varint must be >= 0")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(buf: bytes, pos: int, max_bytes: int = 10) -> tuple[int, int]:
    """Parse an unsigned LEB128 at ``pos`` -> (value, next position); EntropyError if
    truncated, longer than ``max_bytes`` or not minimally encoded."""
    value = shift = 0
    for i in range(max_bytes):
        if pos + i >= len(buf):
            raise EntropyError("truncated varint")
        byte = buf[pos + i]
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if byte == 0 and i > 0:
                raise EntropyError("non-minimal varint")
            return value, pos + i + 1
    raise EntropyError(f"varint longer than {max_bytes} bytes")


# ---- model ------------------------------------------------------------------------------
def _exp_nonpositive(e: np.ndarray) -> np.ndarray:
    """exp(e) for e in [-40, 0] with + - * only: Taylor series of e/64, squared 6 times.
    Relative error < 1e-13; bit-identical on every IEEE-754 machine."""
    y = e * (1.0 / 64.0)
    acc = np.full_like(y, _EXP_TERMS[-1])
    for c in reversed(_EXP_TERMS[:-1]):
        acc = acc * y + c
    for _ in range(6):
        acc = acc * acc
    return acc


def gaussian_freqs(mean, std, alphabet: int) -> np.ndarray:
    """Per-row discretised Gaussian over symbols ``0 .. alphabet-1``, in units of symbols.

    ``gaussian_freqs([127.5], [30.0], 256)`` -> (1, 256) int64, each row summing to 2**16,
    every entry >= 1 (any symbol stays codable). ``mean`` is clamped into the alphabet and
    ``std`` to >= 0.5 symbol. Deterministic across machines (see module docstring).
    """
    if not 2 <= alphabet <= MAX_ALPHABET:
        raise ValueError(f"alphabet must be in [2, {MAX_ALPHABET}], got {alphabet}")
    mean = np.clip(np.asarray(mean, dtype=np.float64).reshape(-1), 0.0, alphabet - 1.0)
    std = np.maximum(np.asarray(std, dtype=np.float64).reshape(-1), 0.5)
    if mean.shape != std.shape or not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
        raise ValueError("mean and std must be finite vectors of equal length")
    u = (np.arange(alphabet, dtype=np.float64)[None, :] - mean[:, None]) / std[:, None]
    g = _exp_nonpositive(np.maximum(-0.5 * (u * u), -40.0))
    w = np.floor(g * float(1 << 24)).astype(np.int64)  # >= 1 near the (clamped) mean
    free = _M - alphabet
    freqs = 1 + (w * free) // w.sum(axis=1, keepdims=True)
    rows = np.arange(freqs.shape[0])
    freqs[rows, np.argmax(w, axis=1)] += _M - freqs.sum(axis=1)
    return freqs


def _tables(freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    freqs = np.asarray(freqs, dtype=np.int64)
    if freqs.ndim != 2 or np.any(freqs < 1) or np.any(freqs.sum(axis=1) != _M):
        raise ValueError(f"freqs must be (dim, alphabet) positive ints with rows summing to {_M}")
    cum = np.zeros_like(freqs)
    np.cumsum(freqs[:, :-1], axis=1, out=cum[:, 1:])
    return freqs.astype(np.uint64), cum.astype(np.uint64)


def lanes_for(total: int) -> int:
    """How many interleaved lanes a stream of ``total`` symbols uses."""
    by_steps = -(-total // _STEPS_TARGET)
    return int(max(1, min(MAX_LANES, by_steps, total // _MIN_LANE_SYMBOLS)))


# ---- coding -----------------------------------------------------------------------------
def rans_encode(symbols: np.ndarray, freqs: np.ndarray) -> bytes:
    """Encode ``symbols`` (N, dim) with per-column frequency rows ``freqs`` (dim, A)."""
    sym = np.asarray(symbols)
    f_tab, c_tab = _tables(freqs)
    n, dim = sym.shape
    if dim != f_tab.shape[0] or (sym.size and (sym.min() < 0 or sym.max() >= f_tab.shape[1])):
        raise ValueError("symbols do not fit the frequency tables")
    total = n * dim
    lanes = lanes_for(total)
    flat = sym.reshape(-1).astype(np.int64)
    dims = np.tile(np.arange(dim, dtype=np.int64), n)
    f_all, c_all = f_tab[dims, flat], c_tab[dims, flat]
    x = np.full(lanes, _RANS_L, dtype=np.uint64)
    s16, low16 = np.uint64(16), np.uint64(0xFFFF)
    emitted: list[np.ndarray] = []
    for lo in range(((total - 1) // lanes) * lanes if total else -1, -1, -lanes):
        m = min(lanes, total - lo)
        f, c, xs = f_all[lo:lo + m], c_all[lo:lo + m], x[:m]
        over = xs >= (f << s16)
        if over.any():
            emitted.append((xs[over] & low16)[::-1])  # decoder reads lanes ascending
            xs[over] >>= s16
        x[:m] = ((xs // f) << s16) + (xs % f) + c
    words = np.concatenate(emitted)[::-1] if emitted else np.zeros(0, np.uint64)
    return (write_varint(lanes) + x.astype("<u4").tobytes() + words.astype("<u2").tobytes())


def rans_decode(data: bytes, n: int, freqs: np.ndarray) -> np.ndarray:
    """Decode ``n`` rows -> (n, dim) int64 symbols; EntropyError if the stream is not a
    complete, exact encoding for these tables."""
    f_tab, c_tab = _tables(freqs)
    dim, alphabet = f_tab.shape
    total = n * dim
    lanes, pos = read_varint(data, 0)
    if total == 0 or lanes != lanes_for(total):
        raise EntropyError(f"lane count {lanes} does not match {total} symbols")
    end_states = pos + 4 * lanes
    if end_states > len(data) or (len(data) - end_states) % 2:
        raise EntropyError("stream length does not fit its lane states and 16-bit words")
    x = np.frombuffer(data, "<u4", lanes, pos).astype(np.uint64)
    words = np.frombuffer(data, "<u2", (len(data) - end_states) // 2, end_states).astype(np.uint64)
    if np.any(x < _RANS_L):
        raise EntropyError("lane state out of range")
    # symbol of a slot: last cum <= slot in row d, found in one sorted array of all rows
    starts = (c_tab.astype(np.int64) + (np.arange(dim, dtype=np.int64) << PRECISION)[:, None]).reshape(-1)
    row_base = np.arange(dim, dtype=np.int64) * alphabet
    dims = np.tile(np.arange(dim, dtype=np.int64), -(-total // dim) + lanes)
    out = np.empty(total, dtype=np.int64)
    s16, low16, rl = np.uint64(16), np.uint64(0xFFFF), np.uint64(_RANS_L)
    wpos = 0
    for lo in range(0, total, lanes):
        m = min(lanes, total - lo)
        xs = x[:m]
        slot = xs & low16
        d = dims[lo:lo + m]
        s = np.searchsorted(starts, (d << PRECISION) + slot.astype(np.int64), side="right") - 1 - row_base[d]
        out[lo:lo + m] = s
        xs = f_tab[d, s] * (xs >> s16) + slot - c_tab[d, s]
        under = xs < rl
        k = int(under.sum())
        if k:
            if wpos + k > words.size:
                raise EntropyError("stream ended early")
            xs[under] = (xs[under] << s16) | words[wpos:wpos + k]
            wpos += k
        x[:m] = xs
    if wpos != words.size or np.any(x != rl):
        raise EntropyError("stream does not end where it should")
    return out.reshape(n, dim)
