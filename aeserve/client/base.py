"""The Client's core: connection lifecycle, chunked dispatch, input checks, encode/decode.

``ClientBase`` holds what every operation needs (the runtime, the batcher, the selected
model's card) and the primitive calls; the operation groups (generation, scoring,
compression, ...) are mixins in this package that build on it, assembled into
``aeserve.Client`` in ``aeserve/client/__init__.py``.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import threading
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .. import noise
from ..batching import Batcher, Progress, check_max_in_flight, chunks
from ..card import ModelCard
from ..checks import check_int
from ..errors import ClientClosedError, ConfigError, InputError, ModelNotFoundError
from ..images import as_batch, as_latents
from ..limits import Limits
from ..ort_session import thread_layout, usable_cores
from ..progress import client_progress
from ..runtime import ModelInfo, Runtime, connect
from ..runtime.embedded import EmbeddedRuntime

if TYPE_CHECKING:
    from typing_extensions import Self

DEFAULT_MODEL = "mnist_vae"
POSTERIORS = ("mean", "sample")
_PROGRESS_MIN_CHUNKS = 8
TRITON_IN_FLIGHT = 4   # concurrent requests to a server when max_in_flight is not given


class _Connection:
    """A runtime and its worker threads, shared by a Client and its ``with_model`` siblings."""

    def __init__(self, rt: Runtime, max_in_flight: int):
        self.runtime, self.batcher = rt, Batcher(max_in_flight)
        self._refs, self._lock = 1, threading.Lock()

    def acquire(self) -> "_Connection":
        with self._lock:
            self._refs += 1
        return self

    def release(self) -> None:
        with self._lock:
            self._refs -= 1
            last = self._refs == 0
        if last:
            self.batcher.close()
            self.runtime.close()


_OPEN_ANY_TIME = frozenset({"close"})


def _open_only(method: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a public method so that it raises ClientClosedError once the Client is closed."""
    @functools.wraps(method)
    def call(self: "ClientBase", *args: Any, **kwargs: Any) -> Any:
        self._check_open()
        return method(self, *args, **kwargs)

    call._checks_open = True  # type: ignore[attr-defined]
    return call


def _guard_public_methods(cls: type) -> None:
    """Every public method ``cls`` defines checks first that the Client is open (the mixins
    of this package and new ones get this by subclassing ``ClientBase``)."""
    for name, value in list(vars(cls).items()):
        if name.startswith("_") or name in _OPEN_ANY_TIME or not inspect.isfunction(value) \
                or getattr(value, "_checks_open", False):
            continue
        setattr(cls, name, _open_only(value))


class ClientBase:
    """Encode and decode with one model over one connection (see ``aeserve.Client``).

    ``url`` None -> embedded over ``repository`` if given, else ``$AESERVE_URL``, else embedded
    over ``aeserve.repository.default_repository()``; ``http://``/``grpc://`` -> Triton.
    ``model`` None -> ``mnist_vae`` if present, else the first model. ``timeout`` bounds
    each server request, ``connect_timeout`` the readiness check. Embedded, ``threads``
    (default: the cores this process may use) is the CPU threads the client runs models on:
    that many chunks in flight, one ONNX Runtime thread each (``ort_session.thread_layout``), and
    a call of one chunk runs alone on all ``threads`` (``Runtime.alone``);
    ``max_in_flight`` (default: ``threads`` embedded, 4 over Triton) bounds concurrent chunks. ``progress``: True for a
    tqdm bar on long calls, or a callable ``(done, total)``. ``limits``: what one call may
    allocate (``aeserve.limits.Limits``; default ``Limits.from_env()``), checked before it does.

    Every public method of a closed Client (``close()``, or the end of its ``with`` block)
    raises ClientClosedError.

    Raises ModelNotFoundError (unknown model; the message lists the available ones),
    ServerUnavailableError (unreachable/unready server), RepositoryError, CardError,
    ConfigError (bad limits).
    """

    model: str
    card: ModelCard

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _guard_public_methods(cls)

    def __init__(self, url: str | None = None, model: str | None = None, *,
                 repository: str | os.PathLike[str] | None = None, timeout: float = 30.0,
                 connect_timeout: float = 5.0, max_in_flight: int | None = None, threads: int | None = None,
                 progress: bool | Progress | None = None, limits: Limits | None = None):
        if limits is not None and not isinstance(limits, Limits):
            raise ConfigError(f"limits must be an aeserve.limits.Limits or None, got {type(limits).__name__}")
        self._limits = limits if limits is not None else Limits.from_env()
        if max_in_flight is not None:
            check_max_in_flight(max_in_flight)
        if threads is not None:
            threads = check_int(threads, "threads", minimum=1, detail=" or None (all usable cores)")
        if url is not None and not isinstance(url, str):
            raise InputError(f"url must be a string like grpc://localhost:8001 or None, got {type(url).__name__}")
        in_flight, intra = thread_layout(threads, max_in_flight)
        rt = connect(url, repository, timeout=timeout, connect_timeout=connect_timeout, intra_op_threads=intra,
                     solo_threads=threads or usable_cores())
        if not isinstance(rt, EmbeddedRuntime) and max_in_flight is None:
            in_flight = TRITON_IN_FLIGHT
        self._conn = _Connection(rt, in_flight)
        self._progress = progress
        try:
            self._select(model)
        except BaseException:
            self._conn.release()
            raise

    def _select(self, model: str | None) -> None:
        rt = self._conn.runtime
        if model is None:
            names = rt.models()
            if not names:
                raise ModelNotFoundError(f"no models in {rt.target}; export one with `aeserve export` "
                                         "or pass a repository/URL that has models")
            model = DEFAULT_MODEL if DEFAULT_MODEL in names else names[0]
        if not isinstance(model, str):
            raise InputError(f"model must be a model name (str), got {type(model).__name__}")
        self._info: ModelInfo = rt.model_info(model)
        self.model, self.card = model, self._info.card
        self._threshold: tuple[str, float] | None = None
        self._closed = False

    # ---- connection ------------------------------------------------------------------
    @property
    def runtime(self) -> Runtime:
        return self._conn.runtime

    @property
    def max_batch_size(self) -> int:
        return self._info.max_batch_size

    @property
    def version(self) -> int:
        return self._info.version

    def models(self) -> dict[str, ModelCard]:
        """``{name: card}`` for every model of the repository/server."""
        rt = self._conn.runtime
        return {n: rt.model_info(n).card for n in rt.models()}

    def with_model(self, name: str) -> Self:
        """A Client for another model over the same connection (close each one you open).
        InputError unless ``name`` is a model name."""
        if not isinstance(name, str):
            raise InputError(f"with_model needs a model name (str), got {name!r}; list them with models()")
        other = object.__new__(type(self))
        other._conn, other._progress, other._limits = self._conn, self._progress, self._limits
        other._select(name)
        self._conn.acquire()
        return other

    def close(self) -> None:
        """Release this client; the connection closes when its last client closes. Idempotent."""
        if not getattr(self, "_closed", True):
            self._closed = True
            self._conn.release()

    def _check_open(self) -> None:
        if getattr(self, "_closed", True):
            conn = getattr(self, "_conn", None)
            where = f" on {conn.runtime.target}" if conn is not None else ""
            raise ClientClosedError(f"this Client ({getattr(self, 'model', '?')!r}{where}) is closed; "
                                    "open a new aeserve.Client")

    def __enter__(self) -> Self:
        self._check_open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self._conn.runtime.target!r}, model={self.model!r})"

    # ---- plumbing --------------------------------------------------------------------
    def _map(self, n: int, work: Callable[[int, int], Any], size: int | None = None,
             desc: str = "", item_bytes: int | None = None) -> list[np.ndarray]:
        """Run ``work(start, stop)`` over chunks of ``n`` items; stack results into arrays.

        One chunk runs in the calling thread, alone (``Runtime.alone``: on all the Client's
        threads), and its arrays are returned as they are (no thread hand-off, no copy).
        ``item_bytes``: what one item's results take, checked against the limits before anything
        runs; the output arrays are checked in any case before they are allocated.
        Raises SizeLimitError, ClientClosedError."""
        self._check_open()
        if item_bytes is not None:
            self._limits.check_bytes(n * item_bytes, f"{desc or 'this call'} of {n} items")
        size = size or self._info.max_batch_size
        if 0 < n <= size:
            with self._conn.runtime.alone():
                res = work(0, n)
            if callable(self._progress):
                self._progress(n, n)
            return list(res) if isinstance(res, tuple) else [res]
        spans = chunks(n, size)
        progress, done = self._progress_for(len(spans), n, desc)
        outs: list[np.ndarray] | None = None
        try:
            for s, e, res in self._conn.batcher.imap(work, spans, progress, n):
                res = res if isinstance(res, tuple) else (res,)
                if outs is None:
                    self._limits.check_bytes(sum(n * r[:1].nbytes for r in res), f"{desc or 'this call'} of {n} items")
                    outs = [np.empty((n, *r.shape[1:]), r.dtype) for r in res]
                for o, r in zip(outs, res):
                    o[s:e] = r
        finally:
            if done:
                done()
        return outs or []

    def _progress_for(self, n_chunks: int, n: int,
                      desc: str) -> tuple[Progress | None, Callable[[], None] | None]:
        if callable(self._progress):
            return self._progress, None
        if self._progress and n_chunks >= _PROGRESS_MIN_CHUNKS:
            return client_progress(desc or "aeserve", n)
        return None, None

    def _images(self, x: Any, what: str = "images") -> np.ndarray:
        return as_batch(x, self.card.input_shape, what=f"{what} for model {self.model!r}")

    def _one_image(self, x: Any, what: str) -> np.ndarray:
        batch = as_batch(x, self.card.input_shape, allow_single=True, what=what)
        if batch.shape[0] != 1:
            raise InputError(f"{what} is a batch of {batch.shape[0]}; expected one image {self.card.input_shape}")
        return batch

    def _latent(self, xb: np.ndarray, posterior: str, seed: int, start: int) -> np.ndarray:
        """Latents of one chunk (items ``start..``): z, VAE mu, or mu + sigma * eps(seed, item)."""
        out = self._conn.runtime.encode(self.model, xb)
        if not self.card.is_vae:
            return out["z"]
        if posterior == "mean":
            return out["mu"]
        return noise.posterior_samples(out["mu"], out["logvar"], seed, 1, start=start)[0]

    def _posterior_decodes(self, xb: np.ndarray, seed: int, k: int,
                           start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """VAE, one chunk (items ``start..``): ``(x_hats (k, m, *input_shape), mu, logvar)`` from
        ``k`` posterior draws per image (``noise.posterior_samples``), decoded in this thread."""
        out = self._conn.runtime.encode(self.model, xb)
        mu, logvar = out["mu"], out["logvar"]
        z = noise.posterior_samples(mu, logvar, seed, k, start=start).reshape(k * len(xb), self.card.latent_dim)
        return self._decode_all(z).reshape(k, len(xb), *self.card.input_shape), mu, logvar

    def _decode_all(self, z: np.ndarray) -> np.ndarray:
        """Decode latents in max_batch_size pieces in the calling thread."""
        rt, mbs = self._conn.runtime, self._info.max_batch_size
        return np.concatenate([rt.decode(self.model, z[s:e]) for s, e in chunks(len(z), mbs)])

    def _check_posterior(self, posterior: str, seed: int) -> str:
        if posterior not in POSTERIORS:
            raise ConfigError(f"unknown posterior {posterior!r}; expected one of {', '.join(POSTERIORS)}")
        if posterior == "sample" and not self.card.is_vae:
            raise ConfigError(f"posterior='sample' needs a VAE; model {self.model!r} is family "
                              f"{self.card.family!r} (deterministic encoder): use posterior='mean'")
        noise.check_seed(seed)
        return posterior

    # ---- encode / decode ---------------------------------------------------------------
    def encode(self, x: Any, *, posterior: str = "mean", seed: int = 0) -> np.ndarray:
        """Images -> latents float32 ``(N, latent_dim)``. VAE: posterior "mean" (mu) or
        "sample" (mu + exp(logvar/2) * eps, eps seeded per item)."""
        self._check_posterior(posterior, seed)
        x = self._images(x)
        return self._map(len(x), lambda s, e: self._latent(x[s:e], posterior, seed, s), desc="encode")[0]

    def encode_params(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """VAE posterior parameters ``(mu, logvar)``, each ``(N, latent_dim)``; InputError for other families."""
        if not self.card.is_vae:
            raise InputError(f"encode_params needs a VAE; model {self.model!r} is family {self.card.family!r} "
                             "(use encode(x) for its latent z)")
        x = self._images(x)

        def work(s: int, e: int) -> tuple[np.ndarray, np.ndarray]:
            out = self._conn.runtime.encode(self.model, x[s:e])
            return out["mu"], out["logvar"]

        mu, logvar = self._map(len(x), work, desc="encode")
        return mu, logvar

    def decode(self, z: Any) -> np.ndarray:
        """Latents ``(N, latent_dim)`` -> images float32 ``(N, C, H, W)`` in [0, 1]."""
        z = as_latents(z, self.card.latent_dim, what=f"latents for model {self.model!r}")
        return self._map(len(z), lambda s, e: self._conn.runtime.decode(self.model, z[s:e]), desc="decode")[0]

    def reconstruct(self, x: Any, *, posterior: str = "mean", seed: int = 0) -> np.ndarray:
        """decode(encode(x)) chunk by chunk; same posterior/seed semantics as ``encode``."""
        self._check_posterior(posterior, seed)
        x = self._images(x)

        def work(s: int, e: int) -> np.ndarray:
            return self._conn.runtime.decode(self.model, self._latent(x[s:e], posterior, seed, s))

        return self._map(len(x), work, desc="reconstruct")[0]

    def denoise(self, x_noisy: Any) -> np.ndarray:
        """Reconstruct noisy images through the posterior mean (meaningful with a DAE)."""
        return self.reconstruct(x_noisy)

    @property
    def image_bytes(self) -> int:
        """Bytes of one float32 output image of this model."""
        return 4 * math.prod(self.card.input_shape)


_guard_public_methods(ClientBase)
