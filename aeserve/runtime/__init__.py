"""Runtimes run a model's encoder and decoder graphs: in-process or on a Triton server.

    from aeserve import runtime
    rt = runtime.connect(None)                          # embedded ONNX Runtime ($AESERVE_URL overrides)
    rt = runtime.connect("grpc://localhost:8001")       # Triton over gRPC (http:// for HTTP)
    rt.model_info("mnist_vae"), rt.encode(...), rt.decode(...), rt.close()

Importing this package imports neither onnxruntime nor tritonclient; each runtime
imports its library when created.
"""

from __future__ import annotations

import logging
import os

from ..checks import check_seconds
from .base import ModelInfo, Runtime
from .urls import Endpoint, embedded_path, is_embedded, parse_url

ENV_URL = "AESERVE_URL"
log = logging.getLogger(__name__)


def connect(url: str | None = None, repository: str | os.PathLike[str] | None = None, *,
            timeout: float = 30.0, connect_timeout: float = 5.0, intra_op_threads: int = 0,
            solo_threads: int = 0) -> Runtime:
    """Open a runtime.

    ``url`` None -> embedded if ``repository`` is given, else ``$AESERVE_URL`` if set, else
    embedded (explicit arguments beat the environment). ``""``/``"embedded"`` ->
    EmbeddedRuntime over ``repository`` (default: aeserve.repository.default_repository());
    ``"embedded:<path>"`` names the repository in the URL. ``http[s]://host[:8000]`` /
    ``grpc[s]://host[:8001]`` -> TritonRuntime, checked ready within ``connect_timeout``.
    ``intra_op_threads``: ORT threads per embedded session (0: ORT's default); ``solo_threads``:
    per embedded session of requests made inside ``Runtime.alone()`` (0: the same); unused for Triton.

    ``timeout``/``connect_timeout`` must be positive finite numbers of seconds for every
    runtime (an embedded one has no requests to bound, but a bad value is still refused).

    Raises InputError for a bad timeout, InputError/ConfigError for a malformed URL,
    RepositoryError for a missing repository, ServerUnavailableError for an unreachable
    or unready server.
    """
    check_seconds(timeout, "timeout")
    check_seconds(connect_timeout, "connect_timeout")
    origin = "argument"
    if url is None and repository is None:
        url = os.environ.get(ENV_URL) or None
        origin = f"${ENV_URL}" if url else "default"
    if is_embedded(url):
        from .embedded import EmbeddedRuntime

        path = embedded_path(url) if url else None
        rt: Runtime = EmbeddedRuntime(path if path is not None else repository, intra_op_threads=intra_op_threads,
                                      solo_threads=solo_threads)
    else:
        from .triton import TritonRuntime

        rt = TritonRuntime(url, timeout=timeout, connect_timeout=connect_timeout)  # type: ignore[arg-type]
    log.info("runtime: %s (chosen by %s)", rt.target, origin)
    return rt


__all__ = ["Endpoint", "ModelInfo", "Runtime", "connect", "parse_url", "ENV_URL"]
