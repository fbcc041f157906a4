"""aeserve.checks: the shared integer and finite-array checks."""

from __future__ import annotations

import numpy as np
import pytest

from aeserve.checks import check_int, finite_array
from aeserve.errors import ConfigError, InputError


def test_check_int_bounds_types_and_messages():
    assert check_int(np.int64(3), "n", minimum=1) == 3 and type(check_int(np.int64(3), "n")) is int
    assert check_int(-5, "offset") == -5
    for bad in (0, True, 1.0, "2", None):
        with pytest.raises(InputError, match=r"^n must be an integer >= 1 \(items\), got "):
            check_int(bad, "n", minimum=1, detail=" (items)")
    with pytest.raises(InputError, match=r"bits must be an integer in \[1, 16\], got 17"):
        check_int(17, "bits", minimum=1, maximum=16)
    with pytest.raises(ConfigError, match="epochs must be an integer >= 1, got 0"):
        check_int(0, "epochs", minimum=1, error=ConfigError)


def test_finite_array():
    out = finite_array([[1, 2]], "z")
    assert out.dtype == np.float64 and out.shape == (1, 2)
    with pytest.raises(InputError, match="z must be a numeric array, got dict"):
        finite_array({"a": 1}, "z")
    for bad in ([np.nan], [1.0, np.inf]):
        with pytest.raises(InputError, match="z contains NaN or Inf"):
            finite_array(bad, "z")
