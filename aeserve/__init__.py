"""aeserve: autoencoders from training to production serving.

    import aeserve
    c = aeserve.Client()                 # embedded ONNX Runtime over ./model_repository
    grid = c.generate(n=16, seed=0)      # float32 (16, 1, 28, 28) in [0, 1]

``import aeserve`` never imports torch; training and export live in
``aeserve.train`` / ``aeserve.export`` and need the ``train`` extra.

aeserve logs through the standard ``logging`` module (loggers ``aeserve.*``: runtime
choice, fallbacks, reconnects, export steps) and is silent until the application
configures logging, e.g. ``logging.basicConfig(level=logging.INFO)`` or ``aeserve -v``.
"""

from __future__ import annotations

import logging as _logging

from .card import ModelCard
from .errors import *  # noqa: F401,F403
from .errors import __all__ as _errors_all

__version__ = "0.1.0"

_logging.getLogger(__name__).addHandler(_logging.NullHandler())


def __getattr__(name: str):
    # Client pulls in onnxruntime/tritonclient; load it on first use.
    if name == "Client":
        from .client import Client

        return Client
    raise AttributeError(f"module 'aeserve' has no attribute {name!r}")


__all__ = ["Client", "ModelCard", "__version__", *_errors_all]
