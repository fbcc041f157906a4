"""Serving: start a real Triton Inference Server over a model repository.

    from aeserve.serve import serve
    with serve("model_repository") as server:      # native tritonserver on PATH, else bundled
        print(server.mode, server.url_grpc)        # "bundled", "grpc://127.0.0.1:8001"

See ``launcher.serve`` for the options and errors, ``derived`` for how the bundled
binary serves ONNX models, ``supervisor`` for restarts after a crash, ``access`` for the
API key of the administrative APIs, ``process``/``workdirs`` for process, shared-memory
and temp-folder housekeeping. Logs on the ``aeserve.serve`` logger (silent unless the
application configures logging).
"""

from __future__ import annotations

from .access import API_KEY_ENV, API_KEY_HEADER, admin_headers
from .launcher import ServerHandle, serve
from .options import MODEL_CONTROLS, MODES
from .process import free_ports
from .supervisor import RestartPolicy

__all__ = ["API_KEY_ENV", "API_KEY_HEADER", "MODEL_CONTROLS", "MODES", "RestartPolicy", "ServerHandle",
           "admin_headers", "free_ports", "serve"]
