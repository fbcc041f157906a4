"""Server URLs: ``http://host[:8000]``, ``https://host[:443]``, ``grpc://host[:8001]``,
``grpcs://host[:443]``; ``embedded`` (or ``embedded:/path/to/repo``) means in-process.

    parse_url("grpc://triton")        # Endpoint(scheme="grpc", host="triton", port=8001)
    parse_url("localhost:8000")       # InputError: no scheme
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import ConfigError, InputError

DEFAULT_PORTS = {"http": 8000, "https": 443, "grpc": 8001, "grpcs": 443}
SCHEMES = tuple(DEFAULT_PORTS)
_HOST_RE = re.compile(r"^[A-Za-z0-9._\-]+$|^\[[0-9A-Fa-f:.]+\]$")


@dataclass(frozen=True)
class Endpoint:
    """A parsed server address."""

    scheme: str          # http | https | grpc | grpcs
    host: str
    port: int

    @property
    def protocol(self) -> str:
        """``http`` or ``grpc``."""
        return "grpc" if self.scheme.startswith("grpc") else "http"

    @property
    def ssl(self) -> bool:
        return self.scheme in ("https", "grpcs")

    @property
    def address(self) -> str:
        """``host:port`` as tritonclient wants it."""
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.address}"


def is_embedded(url: str | None) -> bool:
    """True for None, "" and ``embedded`` / ``embedded:<path>``."""
    return url is None or url.strip() == "" or url.strip().split(":", 1)[0].lower() == "embedded"


def embedded_path(url: str) -> str | None:
    """Repository path in ``embedded:<path>``, or None."""
    _, _, rest = url.strip().partition(":")
    return rest or None


def parse_url(url: str) -> Endpoint:
    """Parse a Triton server URL; default ports per scheme (http 8000, grpc 8001).

    Raises InputError for a non-string or a URL without scheme/host, ConfigError for an
    unsupported scheme or a bad port.
    """
    if not isinstance(url, str) or not url.strip():
        raise InputError(f"server URL must be a non-empty string like grpc://localhost:8001, got {url!r}")
    text = url.strip()
    if "://" not in text:
        raise InputError(f"server URL {text!r} has no scheme; expected http://host[:8000] or grpc://host[:8001]")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as e:
        raise ConfigError(f"server URL {text!r} is malformed ({e}); expected e.g. grpc://localhost:8001") from e
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ConfigError(f"unsupported URL scheme {scheme!r} in {text!r}; expected one of "
                          + ", ".join(s + "://" for s in SCHEMES))
    host = parts.hostname or ""
    if not host or not _HOST_RE.match(host if ":" not in host else f"[{host}]"):
        raise InputError(f"server URL {text!r} has no valid host; expected {scheme}://host[:port]")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ConfigError(f"server URL {text!r} has a path, query or credentials; expected only {scheme}://host[:port]")
    if ":" in host:
        host = f"[{host}]"
    return Endpoint(scheme, host, port if port is not None else DEFAULT_PORTS[scheme])
