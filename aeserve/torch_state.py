"""Torch's process-wide settings, left as the caller had them by aeserve's library calls.

    from aeserve.torch_state import restores_torch_state

    @restores_torch_state
    def fit(x, seed):
        torch.set_num_threads(1); torch.manual_seed(seed)   # fine: both undone on return
        ...

``torch.set_num_threads`` and ``torch.manual_seed`` act on the whole process. Training
and benchmarking need both (a seed for reproducible weights, a thread count that suits a
shared machine), but an application that calls ``aeserve.train.train`` must find its own
thread count and global random stream unchanged afterwards. This module imports torch
only when a wrapped function runs, so importing it costs nothing.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

__all__ = ["restores_torch_state"]

F = TypeVar("F", bound=Callable[..., Any])


def restores_torch_state(fn: F) -> F:
    """Decorate ``fn`` so that torch's intra-op thread count and global CPU (and current
    CUDA device's) random state are restored when it returns or raises.

    ``restores_torch_state(train)(...)`` behaves as ``train(...)``; it adds no arguments
    and raises whatever ``fn`` raises.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import torch

        threads = torch.get_num_threads()
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() and torch.cuda.is_initialized() else []
        with torch.random.fork_rng(devices=devices):
            try:
                return fn(*args, **kwargs)
            finally:
                if torch.get_num_threads() != threads:
                    torch.set_num_threads(threads)

    return wrapper  # type: ignore[return-value]
