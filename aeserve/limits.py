"""Size limits a call is checked against BEFORE it allocates anything.

    limits = Limits.from_env()                     # defaults, overridden by AESERVE_* variables
    limits.check_bytes(n * 784 * 4, "generate(n=10**9)")          # SizeLimitError if too big
    c = aeserve.Client(limits=Limits(max_output_bytes=2**30))     # per Client

=============================  ==========================  =====================================
field                          environment variable        meaning (default)
=============================  ==========================  =====================================
``max_output_bytes``           AESERVE_MAX_OUTPUT_BYTES    bytes one Client call may allocate for
                                                           its result and working arrays (4 GiB)
``max_payload_images``         AESERVE_MAX_PAYLOAD_IMAGES  images one compress payload may declare
                                                           (1,048,576)
``max_payload_expansion``      AESERVE_MAX_PAYLOAD_        bytes of decoded images per payload byte
                               EXPANSION                   (65,536; real payloads expand ~300x)
=============================  ==========================  =====================================

A bad value (not a positive integer) in an argument or a variable is a ConfigError.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from .checks import check_int
from .errors import ConfigError, SizeLimitError

__all__ = ["Limits", "ENV"]

ENV = {"max_output_bytes": "AESERVE_MAX_OUTPUT_BYTES", "max_payload_images": "AESERVE_MAX_PAYLOAD_IMAGES",
       "max_payload_expansion": "AESERVE_MAX_PAYLOAD_EXPANSION"}


@dataclass(frozen=True)
class Limits:
    """Bounds on what one call may allocate; see the module docstring for the defaults."""

    max_output_bytes: int = 4 << 30
    max_payload_images: int = 1 << 20
    max_payload_expansion: int = 1 << 16

    def __post_init__(self) -> None:
        for f in fields(self):
            check_int(getattr(self, f.name), f.name, minimum=1, error=ConfigError)

    @classmethod
    def from_env(cls) -> "Limits":
        """The defaults, each overridden by its environment variable when set."""
        values = {}
        for name, var in ENV.items():
            raw = os.environ.get(var)
            if raw is not None and raw.strip():
                try:
                    values[name] = int(raw.strip().replace("_", ""))
                except ValueError:
                    raise ConfigError(f"${var} must be a positive integer, got {raw!r}") from None
        return cls(**values)

    def check_bytes(self, nbytes: int, what: str) -> None:
        """SizeLimitError if ``what`` would allocate more than ``max_output_bytes``."""
        if nbytes > self.max_output_bytes:
            raise SizeLimitError(f"{what} would allocate {_size(nbytes)}, more than the limit of "
                                 f"{_size(self.max_output_bytes)}; ask for less per call, or raise the limit "
                                 f"(Client(limits=Limits(max_output_bytes=...)) or ${ENV['max_output_bytes']})")

    def check_payload(self, n_images: int, out_bytes: int, payload_bytes: int) -> None:
        """SizeLimitError if a payload of ``payload_bytes`` declares too many images or
        would decode to too many bytes (absolutely, or per payload byte)."""
        if n_images > self.max_payload_images:
            raise SizeLimitError(f"payload declares {n_images} images, more than the limit of "
                                 f"{self.max_payload_images} per payload (${ENV['max_payload_images']})")
        if out_bytes > self.max_payload_expansion * max(1, payload_bytes):
            raise SizeLimitError(f"a {payload_bytes}-byte payload declares {n_images} images ({_size(out_bytes)} "
                                 f"decoded), more than {self.max_payload_expansion} bytes per payload byte "
                                 f"(${ENV['max_payload_expansion']})")
        self.check_bytes(out_bytes, f"decompressing {n_images} images")


def _size(n: int) -> str:
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"
