"""What a Triton server is started with: the mode, the checked arguments, the command-line options.

    resolve_mode("auto")            # "native" if a tritonserver is on PATH, else "bundled"
    check_args((8000, 8001, 8002), "none", 60.0, 5, RestartPolicy())   # InputError if wrong
    server_args(repository=Path("r"), host="127.0.0.1", ports=(8000, 8001, 8002),
                model_control="none", exit_timeout=5, api_key=key)    # ["--model-repository=r", ...]
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from ..errors import InputError, ServerError
from .access import restricted_args
from .supervisor import RestartPolicy

MODES = ("auto", "native", "bundled")
MODEL_CONTROLS = ("none", "explicit")
log = logging.getLogger(__name__)


def resolve_mode(mode: str) -> str:
    """``native`` or ``bundled`` for a requested mode; InputError for an unknown one,
    ServerError if ``native`` is forced and no ``tritonserver`` is on PATH."""
    if mode not in MODES:
        raise InputError(f"unknown serving mode {mode!r}; expected one of {', '.join(MODES)}")
    native = shutil.which("tritonserver")
    if mode == "native" and native is None:
        raise ServerError("mode 'native' needs a tritonserver on PATH (the official Triton image); "
                          "none found - use mode 'bundled' (the nvidia-pytriton wheel) instead")
    if mode == "auto":
        if native is None:
            log.info("no tritonserver on PATH: serving with the bundled Triton of nvidia-pytriton "
                     "(Python-backend twins of the ONNX models)")
        return "native" if native else "bundled"
    return mode


def server_args(*, repository: Path, host: str, ports: tuple[int, int, int], model_control: str,
                exit_timeout: int, api_key: str) -> list[str]:
    """Command-line options common to both modes (binary and backend options excluded)."""
    http, grpc, metrics = ports
    args = [f"--model-repository={repository}",
            f"--http-address={host}", f"--http-port={http}",
            f"--grpc-address={host}", f"--grpc-port={grpc}",
            f"--metrics-address={host}", f"--metrics-port={metrics}",
            f"--exit-timeout-secs={exit_timeout}",
            f"--model-control-mode={model_control}"]
    if model_control == "explicit":
        args.append("--load-model=*")
    return args + restricted_args(api_key, model_control=model_control)


def check_args(ports: tuple[int, int, int], model_control: str, ready_timeout: float, exit_timeout: int,
                restart: RestartPolicy | None) -> None:
    """InputError for ports outside 1..65535 or not distinct, an unknown model control, a
    non-positive ready timeout, a negative exit timeout, or a restart policy of the wrong type."""
    for p in ports:
        if not isinstance(p, int) or isinstance(p, bool) or not 1 <= p <= 65535:
            raise InputError(f"ports must be integers in 1..65535, got {p!r}")
    if len(set(ports)) != 3:
        raise InputError(f"HTTP, gRPC and metrics ports must differ, got {ports}")
    if model_control not in MODEL_CONTROLS:
        raise InputError(f"unknown model control {model_control!r}; expected one of {', '.join(MODEL_CONTROLS)}")
    if not ready_timeout > 0:
        raise InputError(f"ready_timeout must be > 0 seconds, got {ready_timeout!r}")
    if not isinstance(exit_timeout, int) or exit_timeout < 0:
        raise InputError(f"exit_timeout must be a non-negative integer of seconds, got {exit_timeout!r}")
    if restart is not None and not isinstance(restart, RestartPolicy):
        raise InputError(f"restart must be a RestartPolicy or None, got {type(restart).__name__}")
