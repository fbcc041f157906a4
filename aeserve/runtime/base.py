"""The runtime interface: one request in, arrays out. Splitting, seeds and sampling live in
the Client; a runtime only runs the two graphs of a model.

    rt = aeserve.runtime.connect(None)               # EmbeddedRuntime over the default repository
    info = rt.model_info("mnist_vae")                # ModelInfo(name, card, max_batch_size, version)
    out = rt.encode("mnist_vae", x)                  # {"mu": ..., "logvar": ...} or {"z": ...}
    x_hat = rt.decode("mnist_vae", out["mu"])        # float32 (N, *input_shape)
    rt.close()

Each ``encode``/``decode`` call carries at most ``max_batch_size`` rows. Implementations
are thread-safe and raise only ``aeserve`` errors. Tensor names: ``aeserve.contract``.
"""

from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass
from typing import ContextManager, Mapping

import numpy as np

from ..card import EXPORT_ID, PREFIX, ModelCard
from ..errors import InputError, MismatchedPairError, ModelNotFoundError


@dataclass(frozen=True)
class ModelInfo:
    """What a client needs to know about one model (encoder/decoder pair)."""

    name: str
    card: ModelCard
    max_batch_size: int
    version: int


class Runtime(abc.ABC):
    """Runs the encoder/decoder graphs of the models of one repository or server."""

    #: human-readable target, e.g. "embedded:/path/model_repository" or "grpc://host:8001"
    target: str = ""

    @abc.abstractmethod
    def models(self) -> list[str]:
        """Names of the aeserve models available (encoder/decoder pairs)."""

    @abc.abstractmethod
    def model_info(self, name: str) -> ModelInfo:
        """Card, batch limit and version of ``name``; ModelNotFoundError if absent."""

    @abc.abstractmethod
    def encode(self, name: str, x: np.ndarray) -> dict[str, np.ndarray]:
        """Run the encoder on float32 ``(n, *input_shape)`` with n <= max_batch_size."""

    @abc.abstractmethod
    def decode(self, name: str, z: np.ndarray) -> np.ndarray:
        """Run the decoder on float32 ``(n, latent_dim)`` with n <= max_batch_size."""

    # ---- classifiers (``<name>_classifier``: x -> probs), made by ``aeserve finetune`` ----------
    def classifiers(self) -> list[str]:
        """Names ``<name>`` of the available ``<name>_classifier`` models."""
        return []

    def classifier_info(self, name: str) -> ModelInfo:
        """Card (with ``classes``), batch limit and version of ``<name>_classifier``."""
        raise ModelNotFoundError(f"{self.target} serves no classifiers")

    def classify(self, name: str, x: np.ndarray) -> np.ndarray:
        """Run ``<name>_classifier`` on float32 ``(n, *input_shape)``: class probabilities ``(n, K)``."""
        raise ModelNotFoundError(f"{self.target} serves no classifiers")

    def alone(self) -> ContextManager[None]:
        """``with rt.alone(): rt.decode(...)``: the calling thread's requests inside the block
        run with no other request of the caller in flight, so a runtime may give each of them
        all its threads (the embedded runtime does; a server decides for itself)."""
        return contextlib.nullcontext()

    def close(self) -> None:
        """Release sessions/connections. Idempotent."""

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_request(info: ModelInfo, arr: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    """Guard for one runtime request: float32, trailing ``shape``, 1..max_batch_size rows."""
    if not isinstance(arr, np.ndarray) or arr.ndim != len(shape) + 1 or tuple(arr.shape[1:]) != tuple(shape):
        got = getattr(arr, "shape", type(arr).__name__)
        raise InputError(f"{what} for model {info.name!r} has shape {got}; expected (n, {', '.join(map(str, shape))})")
    if not 1 <= arr.shape[0] <= info.max_batch_size:
        raise InputError(f"{what} for model {info.name!r} has {arr.shape[0]} rows; one request carries "
                         f"1..{info.max_batch_size} (the Client splits larger inputs)")
    return np.ascontiguousarray(arr, dtype=np.float32)


def check_pair(name: str, first: Mapping[str, str], second: Mapping[str, str], where: str,
               parts: tuple[str, str] = ("encoder", "decoder")) -> None:
    """Refuse two cards (flat ``aeserve.*`` maps) of one model that carry different export ids.

    ``parts`` names what the cards belong to (default: the encoder's and the decoder's).
    Raises MismatchedPairError: they come from two exports (e.g. an export was killed
    halfway and the repository was not opened since).
    """
    key = PREFIX + EXPORT_ID
    a, b = first.get(key), second.get(key)
    if a != b:
        raise MismatchedPairError(
            f"model {name!r} on {where}: its {parts[0]} and {parts[1]} come from different exports "
            f"(export ids {a or 'none'} and {b or 'none'}); they are never served together. "
            "Opening the repository completes an interrupted export; otherwise export the model again")
