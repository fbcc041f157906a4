"""Every tritonclient / gRPC / socket / gevent failure becomes an aeserve error here, and only here.

    err = map_error(e, what="inference", target="grpc://h:8001", model="mnist_vae_decoder",
                    timeout=30.0, loaded=True)
    raise err from e

Decided by exception type and status code, never by the message text:

=====================================================  =====================================
gRPC ``DEADLINE_EXCEEDED``, ``TimeoutError`` /          ``TimeoutError`` (also a builtin
``socket.timeout``, ``gevent.Timeout``                   ``TimeoutError``)
gRPC ``NOT_FOUND``, HTTP 404                            ``ModelNotFoundError``; ``ModelNotReadyError``
                                                        when the model was ``loaded`` before (it
                                                        has been unloaded since)
gRPC ``UNAVAILABLE``/``CANCELLED``, HTTP 502/503/504,   ``ServerUnavailableError``
``OSError``/``EOFError``, gevent/geventhttpclient/
http.client/ssl/grpc transport exceptions
gRPC ``PERMISSION_DENIED``/``UNAUTHENTICATED``,          ``ServerError`` (refused: restricted API)
HTTP 401/403
anything else                                           ``InferenceError``
=====================================================  =====================================

Triton's gRPC frontend reports a restricted API as ``UNAVAILABLE``; the runtime tells
that apart from an unreachable server by asking whether the server is live
(``TritonRuntime._index``), not by reading the message.
"""

from __future__ import annotations

import builtins

from ..errors import AeserveError, InferenceError, ModelNotFoundError, ModelNotReadyError, ServerError, ServerUnavailableError, TimeoutError

__all__ = ["map_error", "status_of", "short_text"]

#: tritonclient's ``InferenceServerException.status()``: ``str(grpc.StatusCode)`` for gRPC,
#: the HTTP status code for HTTP.
BY_STATUS: dict[str, type[AeserveError]] = {
    "StatusCode.DEADLINE_EXCEEDED": TimeoutError,
    "StatusCode.NOT_FOUND": ModelNotFoundError, "404": ModelNotFoundError,
    "StatusCode.UNAVAILABLE": ServerUnavailableError, "StatusCode.CANCELLED": ServerUnavailableError,
    "502": ServerUnavailableError, "503": ServerUnavailableError, "504": ServerUnavailableError,
    "StatusCode.PERMISSION_DENIED": ServerError, "StatusCode.UNAUTHENTICATED": ServerError,
    "401": ServerError, "403": ServerError,
}
_TRANSPORT_MODULES = ("geventhttpclient", "gevent", "http.client", "ssl", "grpc")


def map_error(e: BaseException, *, what: str, target: str, model: str | None = None,
              timeout: float | None = None, loaded: bool = False) -> AeserveError:
    """The aeserve error for ``e`` (see the module table); the caller raises it ``from e``.

    ``what``/``target``/``model`` go into the message; ``timeout`` (seconds) into a
    TimeoutError's; ``loaded``: the model was ready earlier in this runtime."""
    where = f"{what}{f' of {model!r}' if model else ''} on {target}"
    status, msg = status_of(e), short_text(e)
    cls = BY_STATUS.get(status)
    if cls is TimeoutError or _is_timeout(e):
        return TimeoutError(f"{where} did not complete within {timeout:g} s; the server is slow or hung "
                            "(raise the timeout or check the server)")
    if cls is ModelNotFoundError:
        if loaded:
            return ModelNotReadyError(f"{where}: model is not ready ({msg}); wait for it to load or check the server")
        return ModelNotFoundError(f"{where}: model not found ({msg}); list models with Client.models()")
    if cls is ServerError:
        return ServerError(f"{where} refused: the server restricts this API to callers with its API key ({msg})")
    if cls is ServerUnavailableError or isinstance(e, (OSError, EOFError)) or _is_transport(e):
        return ServerUnavailableError(f"{where} failed: server unreachable ({msg}); check the URL and that the "
                                      "server is running")
    return InferenceError(f"{where} failed: {msg}")


def status_of(e: BaseException) -> str:
    """The status a tritonclient exception carries (``"StatusCode.NOT_FOUND"``, ``"404"``), a raw
    ``grpc.RpcError``'s code, or ``""``."""
    if hasattr(e, "status") and callable(e.status) and hasattr(e, "message"):  # InferenceServerException
        return str(e.status() or "")
    if hasattr(e, "code") and callable(e.code) and hasattr(e, "details"):      # raw grpc.RpcError
        try:
            return str(e.code())
        except Exception:  # noqa: BLE001 - a half-built RpcError has no code
            return ""
    return ""


def short_text(e: BaseException) -> str:
    """The first line of the exception's message (its ``message()`` for tritonclient), at most 300 chars."""
    msg = ""
    if hasattr(e, "message") and callable(e.message):
        msg = str(e.message() or "")
    elif hasattr(e, "details") and callable(e.details):
        try:
            msg = str(e.details() or "")
        except Exception:  # noqa: BLE001
            msg = ""
    msg = (msg or str(e)).strip()
    return (msg.splitlines()[0] if msg else type(e).__name__)[:300]


def _is_timeout(e: BaseException) -> bool:
    if isinstance(e, builtins.TimeoutError):          # socket.timeout is an alias
        return True
    return type(e).__name__ == "Timeout" and type(e).__module__.startswith("gevent")


def _is_transport(e: BaseException) -> bool:
    return (type(e).__module__ or "").startswith(_TRANSPORT_MODULES)
