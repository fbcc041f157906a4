"""Argument checks shared by the library: integers in a range and finite numeric arrays.

    n = check_int(n, "n", minimum=1)                          # InputError "n must be an integer >= 1, got 0"
    bits = check_int(bits, "bits", minimum=1, maximum=16)     # "... an integer in [1, 16] ..."
    a = finite_array(z, "latents")                            # float64; InputError on non-numbers, NaN/Inf
    t = check_seconds(timeout, "timeout")                     # finite float > 0; no strings, bools, NaN

Booleans are not integers here (``True`` is refused), numpy integers are. Each check
raises the error class it is given (InputError by default; ConfigError for settings).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import AeserveError, InputError

__all__ = ["check_int", "check_seconds", "finite_array"]


def check_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None,
              detail: str = "", error: type[AeserveError] = InputError) -> int:
    """``value`` as a Python int within ``[minimum, maximum]`` (either bound optional).

    The message reads ``"{name} must be an integer >= {minimum}{detail}, got {value!r}"``
    (``in [min, max]`` when both bounds are given); raises ``error``.
    """
    if type(value) is int and (minimum is None or value >= minimum) and (maximum is None or value <= maximum):
        return value   # the common case, checked without the isinstance chain
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        if minimum is not None and maximum is not None:
            rule = f" in [{minimum}, {maximum}]"
        elif minimum is not None:
            rule = f" >= {minimum}"
        elif maximum is not None:
            rule = f" <= {maximum}"
        else:
            rule = ""
        raise error(f"{name} must be an integer{rule}{detail}, got {value!r}")
    return int(value)


def finite_array(a: Any, name: str) -> np.ndarray:
    """``a`` as a float64 array of finite numbers; InputError for non-numeric input or NaN/Inf.

    Shape rules are the caller's (each says what shape it expects)."""
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a numeric array, got {type(a).__name__}") from None
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} contains NaN or Inf; expected finite values")
    return arr


def check_seconds(value: Any, name: str) -> float:
    """``value`` as a finite number of seconds > 0 (int or float, not bool or str); InputError otherwise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or value <= 0:
        raise InputError(f"{name} must be a positive finite number of seconds, got {value!r}")
    return float(value)
