"""The one place ONNX Runtime sessions get their options.

    from aeserve.ort_session import cpu_session, session_options
    sess = cpu_session("model.onnx", threads=2)             # CPU session, aeserve's options
    opts = session_options(threads=0)                       # the options alone (0 = ORT's default)
    ort.InferenceSession(path, opts, providers=[...])       # e.g. with CUDA first

Options every aeserve session shares: spinning worker threads off unless asked for (intra-
and inter-op; spinning threads starve torch, and each other, on small machines), sequential execution,
warnings-and-above logging off (severity 3 = errors only), ``threads`` intra-op threads
when > 0. Used by the embedded runtime, the export parity gate, the throughput benchmark's
bare session, the reference classifier and the served Python-backend model. Imports
onnxruntime lazily, so importing this module costs nothing.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["session_options", "cpu_session", "usable_cores", "thread_layout", "spinning_allowed"]

CPU = ["CPUExecutionProvider"]


def session_options(threads: int = 0, *, spinning: bool = False) -> Any:
    """``onnxruntime.SessionOptions`` with aeserve's settings (module doc); ``threads`` > 0
    fixes the intra-op thread count, 0 leaves ORT's default (one per core). ``spinning``
    lets the intra-op workers spin between runs (lower latency for back-to-back small runs;
    only where no torch shares the process, see :func:`spinning_allowed`). Raises
    ImportError if onnxruntime is not installed (callers map it to their own error)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    if threads > 0:
        opts.intra_op_num_threads = int(threads)
    return opts


def spinning_allowed() -> bool:
    """Whether spinning ORT worker threads are harmless here: not when torch is loaded in this
    process (its own thread pool would compete with them for the cores)."""
    return "torch" not in sys.modules


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask; ``os.cpu_count()`` where there is none)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def thread_layout(threads: int | None = None, in_flight: int | None = None) -> tuple[int, int]:
    """``(requests in flight, intra-op threads per session)`` for ``threads`` CPU threads in all.

    ``thread_layout()`` on 2 cores -> ``(2, 1)``: as many concurrent requests as threads, one
    ORT thread each (measured faster for chunked calls than one request on a multi-threaded
    session: independent requests need no synchronisation between threads, and one-thread
    sessions need no spinning pool). ``threads`` None -> :func:`usable_cores`; an explicit
    ``in_flight`` shares the threads among that many requests (at least one each).
    Raises ValueError for values < 1.
    """
    threads = usable_cores() if threads is None else int(threads)
    in_flight = threads if in_flight is None else int(in_flight)
    if threads < 1 or in_flight < 1:
        raise ValueError(f"threads and requests in flight must be >= 1, got {threads} and {in_flight}")
    return in_flight, max(1, threads // in_flight)


def cpu_session(model: bytes | str | os.PathLike[str], threads: int = 0) -> Any:
    """An ``onnxruntime.InferenceSession`` on the CPU provider with :func:`session_options`.

    ``model``: a path or the serialized ONNX bytes. Raises whatever ONNX Runtime raises for
    an unloadable model (its own exception types); callers map it to an ``aeserve`` error."""
    import onnxruntime as ort

    source = model if isinstance(model, bytes) else os.fspath(model)
    return ort.InferenceSession(source, session_options(threads), providers=CPU)
