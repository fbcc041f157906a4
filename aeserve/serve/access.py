"""Who may use the server's administrative APIs: Triton's restricted-API options.

    key = resolve_api_key(None, host="127.0.0.1", model_control="explicit")   # generated
    args = restricted_args(key, model_control="explicit")
    # ["--http-restricted-api=model-repository,logging,trace:aeserve-api-key=<key>",
    #  "--grpc-restricted-protocol=model-repository,logging,trace:aeserve-api-key=<key>"]

The logging and trace APIs are always restricted (they change what the server writes
where). With ``--model-control explicit`` the model-repository API (index, load, unload)
is restricted too: its load endpoint accepts uploaded model files, and a Python-backend
model is code that the server runs. Requests to a restricted API must carry the key:
HTTP header ``aeserve-api-key: <key>``; gRPC metadata ``triton-grpc-protocol-aeserve-api-key``
(Triton prefixes restricted gRPC header names). Without it Triton answers HTTP 403 /
gRPC UNAVAILABLE "This API is restricted".
"""

from __future__ import annotations

import ipaddress
import secrets

from ..errors import InputError

API_KEY_HEADER = "aeserve-api-key"
GRPC_API_KEY_HEADER = "triton-grpc-protocol-" + API_KEY_HEADER
API_KEY_ENV = "AESERVE_API_KEY"
ALWAYS_RESTRICTED = ("logging", "trace")
EXPLICIT_RESTRICTED = ("model-repository",)
_KEY_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~")


def is_loopback(host: str) -> bool:
    """True for a loopback bind address (127.0.0.0/8, ::1, localhost)."""
    h = host.strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def restricted_apis(model_control: str) -> tuple[str, ...]:
    """The Triton API groups that need the key under ``model_control``."""
    return EXPLICIT_RESTRICTED + ALWAYS_RESTRICTED if model_control == "explicit" else ALWAYS_RESTRICTED


def resolve_api_key(api_key: str | None, *, host: str, model_control: str) -> str:
    """The key protecting the restricted APIs: ``api_key`` if given (checked), else a fresh one.

    InputError for a key that is too short or has characters outside ``[A-Za-z0-9-_.~]``,
    and for explicit model control on a non-loopback ``host`` without a key chosen by the
    caller (a generated key printed on a console is no protection for a network service).
    """
    if api_key is None:
        if model_control == "explicit" and not is_loopback(host):
            raise InputError(f"--model-control explicit on {host} (not loopback) needs an API key: pass "
                             f"--api-key or set {API_KEY_ENV}; otherwise anyone who reaches the port can "
                             "load models, and model files are code the server runs")
        return secrets.token_urlsafe(24)
    if not isinstance(api_key, str) or len(api_key) < 16 or not set(api_key) <= _KEY_CHARS:
        got = f"{len(api_key)} characters" if isinstance(api_key, str) else type(api_key).__name__
        raise InputError("the API key must be a string of at least 16 characters from A-Z a-z 0-9 - _ . ~ "
                         f"(it travels in an HTTP header); got {got}")
    return api_key


def restricted_args(api_key: str, *, model_control: str) -> list[str]:
    """Triton 2.51 options that put the restricted APIs behind ``api_key`` (HTTP and gRPC)."""
    spec = f"{','.join(restricted_apis(model_control))}:{API_KEY_HEADER}={api_key}"
    return [f"--http-restricted-api={spec}", f"--grpc-restricted-protocol={spec}"]


def admin_headers(api_key: str, protocol: str = "http") -> dict[str, str]:
    """Headers that unlock the restricted APIs for a tritonclient call (``headers=...``)."""
    return {(GRPC_API_KEY_HEADER if protocol == "grpc" else API_KEY_HEADER): api_key}
