"""The one exception hierarchy of aeserve.

Every error a user can cause is one of these, with a message that says what was
wrong and what was expected::

    try:
        client.generate(n=0)
    except aeserve.InputError as e:
        print(e)   # "n must be an integer >= 1 (number of images), got 0"

``AeserveError`` is the root; catch it to catch everything aeserve raises on purpose.
"""

from __future__ import annotations

import builtins

__all__ = [
    "AeserveError",
    "InputError",
    "SizeLimitError",
    "ConfigError",
    "DataError",
    "SplitNotFoundError",
    "CheckpointError",
    "CardError",
    "ExportError",
    "ParityError",
    "QuantizationError",
    "RepositoryError",
    "MismatchedPairError",
    "ModelNotFoundError",
    "ServerError",
    "ServerUnavailableError",
    "ModelNotReadyError",
    "TimeoutError",
    "InferenceError",
    "ClientClosedError",
    "PayloadError",
    "DistributedError",
    "PriorMissingError",
]


class AeserveError(Exception):
    """Root of every error aeserve raises on purpose."""


class InputError(AeserveError, ValueError):
    """An argument or array was wrong: shape, dtype, range, NaN/Inf, empty, n <= 0..."""


class SizeLimitError(InputError):
    """A call would allocate more than its configured limit (``aeserve.limits``); nothing was allocated."""


class ConfigError(AeserveError, ValueError):
    """An unknown family, architecture, dataset, method or an invalid hyper-parameter."""


class DataError(AeserveError):
    """A dataset is missing, unreadable, or has the wrong shape or dtype."""


class SplitNotFoundError(DataError):
    """The data source has no such split (e.g. a single .npy file has no test split)."""


class CheckpointError(AeserveError):
    """A checkpoint is missing, truncated, corrupted, or from another format version."""


class CardError(AeserveError):
    """A model card is missing keys or carries values this version does not understand."""


class ExportError(AeserveError):
    """ONNX export failed or the model repository could not be written."""


class ParityError(ExportError):
    """ONNX Runtime and torch disagree beyond tolerance, or the batch axis is not dynamic."""


class QuantizationError(ParityError):
    """A quantized export lost more quality than its bound allows (the export is refused)."""


class RepositoryError(AeserveError):
    """A model repository is missing, not a directory, or malformed."""


class MismatchedPairError(RepositoryError):
    """A model's encoder and decoder come from different exports (their export ids differ);
    they are never served together."""


class ModelNotFoundError(AeserveError, LookupError):
    """The requested model is not in the repository or on the server."""


class ServerError(AeserveError):
    """Talking to a Triton server failed."""


class ServerUnavailableError(ServerError):
    """The server cannot be reached or is not ready."""


class ModelNotReadyError(ServerError):
    """The server is up but the model is not loaded/ready."""


class TimeoutError(ServerError, builtins.TimeoutError):  # noqa: A001 - deliberately aeserve.TimeoutError
    """A request did not complete within its timeout (also a builtin ``TimeoutError``, so
    ``except TimeoutError`` without the aeserve prefix catches it too)."""


class InferenceError(AeserveError):
    """The runtime failed to run a model on valid input."""


class ClientClosedError(AeserveError):
    """The Client (or its connection) was closed; open a new one."""


class PayloadError(AeserveError, ValueError):
    """A compressed payload is corrupt, truncated, foreign, or for another model."""


class DistributedError(AeserveError):
    """A distributed job failed: a rank or actor died, or the cluster could not be reached."""


class PriorMissingError(ConfigError):
    """The model's card has no fitted latent prior; ``aeserve fit-prior`` fits one."""
