"""Serving: start a real Triton Inference Server over a model repository.

    from aeserve.serve import serve
    with serve("model_repository") as server:      # native tritonserver on PATH, else bundled
        print(server.mode, server.url_grpc)        # "bundled", "grpc://127.0.0.1:8001"

See ``launcher.serve`` for the options and errors, ``derived`` for how the bundled
binary serves ONNX models, ``process`` for process/shared-memory housekeeping.
"""

from __future__ import annotations

from .launcher import MODEL_CONTROLS, MODES, ServerHandle, serve
from .process import free_ports

__all__ = ["MODEL_CONTROLS", "MODES", "ServerHandle", "free_ports", "serve"]
