"""``aeserve.Client``: the product's face. Embedded ONNX Runtime or Triton HTTP/gRPC.

    import aeserve
    c = aeserve.Client()                                  # embedded over ./model_repository
    c = aeserve.Client("grpc://localhost:8001", model="mnist_vae")
    imgs = c.generate(n=64, seed=0, temperature=1.0)      # float32 (64, 1, 28, 28) in [0, 1]
    blob = c.compress(x); x_hat = c.decompress(blob)      # bytes, self-describing, checked
    scores = c.anomaly_score(x, method="elbo", k=16)

Images go in as float ``(N, C, H, W)`` in [0, 1], uint8, or ``(N, H, W)`` for one channel,
and come out as float32 ``(N, C, H, W)``. Requests larger than the model's
``max_batch_size`` are split, sent ``max_in_flight`` at a time and reassembled in order.
All randomness is drawn here with counter-based noise (``aeserve.latent.standard_normal``):
item ``i`` depends only on ``(seed, i)``, so results do not depend on ``n``, chunking,
concurrency or the runtime. Every bad input raises a typed ``aeserve`` error.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, Sequence

import numpy as np

from . import latent
from .batching import Batcher, Progress, check_max_in_flight, chunks, tqdm_progress
from .card import ModelCard
from .errors import CardError, ConfigError, InputError, ModelNotFoundError, PayloadError
from .images import as_batch, as_latents
from .runtime import ModelInfo, Runtime, connect

DEFAULT_MODEL = "mnist_vae"
POSTERIORS = ("mean", "sample")
SCORE_METHODS = ("mse", "elbo")
_PROGRESS_MIN_CHUNKS = 8


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


class Client:
    """Encode, decode, generate, interpolate, denoise, score and compress with one model.

    ``url`` None -> embedded over ``repository`` if given, else ``$AESERVE_URL``, else embedded
    over ``aeserve.repository.default_repository()``; ``http://``/``grpc://`` -> Triton.
    ``model`` None -> ``mnist_vae`` if present, else the first model. ``timeout`` bounds
    each server request, ``connect_timeout`` the readiness check. ``progress``: True for a
    tqdm bar on long calls, or a callable ``(done, total)``.

    Raises ModelNotFoundError (unknown model; the message lists the available ones),
    ServerUnavailableError (unreachable/unready server), RepositoryError, CardError.
    """

    model: str
    card: ModelCard

    def __init__(self, url: str | None = None, model: str | None = None, *,
                 repository: str | os.PathLike[str] | None = None, timeout: float = 30.0,
                 connect_timeout: float = 5.0, max_in_flight: int = 4,
                 progress: bool | Progress | None = None):
        check_max_in_flight(max_in_flight)
        if url is not None and not isinstance(url, str):
            raise InputError(f"url must be a string like grpc://localhost:8001 or None, got {type(url).__name__}")
        rt = connect(url, repository, timeout=timeout, connect_timeout=connect_timeout)
        self._conn = _Connection(rt, max_in_flight)
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

    def with_model(self, name: str) -> "Client":
        """A Client for another model over the same connection (close each one you open)."""
        other = object.__new__(Client)
        other._conn, other._progress = self._conn, self._progress
        other._select(name)
        self._conn.acquire()
        return other

    def close(self) -> None:
        """Release this client; the connection closes when its last client closes. Idempotent."""
        if not getattr(self, "_closed", True):
            self._closed = True
            self._conn.release()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self._conn.runtime.target!r}, model={self.model!r})"

    # ---- plumbing --------------------------------------------------------------------
    def _map(self, n: int, work: Callable[[int, int], Any], size: int | None = None,
             desc: str = "") -> list[np.ndarray]:
        """Run ``work(start, stop)`` over chunks of ``n`` items; stack results into arrays."""
        spans = chunks(n, size or self._info.max_batch_size)
        progress, done = self._progress_for(len(spans), n, desc)
        outs: list[np.ndarray] | None = None
        try:
            for s, e, res in self._conn.batcher.imap(work, spans, progress, n):
                res = res if isinstance(res, tuple) else (res,)
                if outs is None:
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
            return tqdm_progress(desc or "aeserve", n)
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
        eps = latent.standard_normal(seed, start, xb.shape[0], self.card.latent_dim)
        return out["mu"] + np.exp(0.5 * out["logvar"]) * eps

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
        latent.check_seed(seed)
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

    # ---- generation ------------------------------------------------------------------
    def generate(self, n: int, *, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
        """``n`` images decoded from z ~ N(0, T^2 I); item i depends only on (seed, i).

        Latents are drawn per chunk, so memory is the output plus one chunk per request in
        flight. Raises InputError for n < 1, a negative/non-integer seed or a bad temperature.
        """
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InputError(f"n must be a positive integer (number of images), got {n!r}")
        t = _temperature(temperature)
        latent.check_seed(seed)
        dim = self.card.latent_dim

        def work(s: int, e: int) -> np.ndarray:
            z = latent.standard_normal(seed, s, e - s, dim)
            return self._conn.runtime.decode(self.model, z * t)

        return self._map(int(n), work, desc="generate")[0]

    def interpolate(self, a: Any, b: Any, *, steps: int = 8, method: str = "slerp") -> np.ndarray:
        """``steps`` images along the latent path between images ``a`` and ``b`` (ends included)."""
        pts = np.concatenate([self._one_image(a, "image a"), self._one_image(b, "image b")])
        return self.interpolate_path(pts, steps=steps, method=method)

    def interpolate_path(self, points: Any, *, steps: int = 8, method: str = "slerp") -> np.ndarray:
        """Images along a path through P >= 2 images; ``(steps-1)*(P-1)+1`` images
        (see ``aeserve.latent.path``). InputError if steps < 2 or P < 2, ConfigError for the method."""
        latent.check_steps(steps)
        latent.check_method(method)
        x = self._images(points, "path points")
        if len(x) < 2:
            raise InputError(f"a path needs at least 2 images, got {len(x)}")
        return self.decode(latent.path(self.encode(x), steps, method))

    def traverse(self, x: Any, *, dim: int, values: Sequence[float] | np.ndarray) -> np.ndarray:
        """Encode one image, set latent coordinate ``dim`` to each of ``values``, decode:
        ``(len(values), C, H, W)``."""
        z = self.encode(self._one_image(x, "image"))[0]
        return self.decode(latent.traverse(z, dim, values))

    # ---- anomaly ---------------------------------------------------------------------
    def anomaly_score(self, x: Any, *, method: str = "mse", k: int = 16, seed: int = 0) -> np.ndarray:
        """Per-image anomaly score ``(N,)`` float64, higher = more anomalous.

        "mse": mean squared reconstruction error (any family; the card's calibration uses it).
        "elbo" (VAE): negative ELBO in nats, ``k`` posterior samples per image, the k
        decodes batched together; sample j of item i depends only on (seed, i, j).
        """
        from . import anomaly

        if method not in SCORE_METHODS:
            raise ConfigError(f"unknown anomaly method {method!r}; expected one of {', '.join(SCORE_METHODS)}")
        x = self._images(x)
        if method == "mse":
            def mse(s: int, e: int) -> np.ndarray:
                xb = x[s:e]
                return anomaly.mse_score(xb, self._conn.runtime.decode(self.model, self._latent(xb, "mean", 0, s)))

            return self._map(len(x), mse, desc="score")[0]
        if not self.card.is_vae:
            raise ConfigError(f"method 'elbo' needs a VAE; model {self.model!r} is family {self.card.family!r}: "
                              "use method='mse'")
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"k (posterior samples per image) must be a positive integer, got {k!r}")
        latent.check_seed(seed)
        k, dim, shape = int(k), self.card.latent_dim, self.card.input_shape
        sigma = float(self.card.hparams.get("sigma", 0.1))

        def elbo(s: int, e: int) -> np.ndarray:
            xb, m = x[s:e], e - s
            out = self._conn.runtime.encode(self.model, xb)
            mu, logvar = out["mu"], out["logvar"]
            eps = latent.standard_normal(seed, s * k, m * k, dim).reshape(m, k, dim).transpose(1, 0, 2)
            z = (mu[None] + np.exp(0.5 * logvar)[None] * eps).reshape(k * m, dim)
            x_hats = self._decode_all(z).reshape(k, m, *shape)
            return anomaly.neg_elbo(xb, x_hats, mu, logvar, self.card.likelihood, sigma=sigma)

        return self._map(len(x), elbo, size=max(1, self._info.max_batch_size // k), desc="score")[0]

    def calibrate(self, x_normal: Any, *, quantile: float = 0.99, method: str = "mse") -> float:
        """Set (and return) the threshold = ``quantile`` of the scores of normal images."""
        from . import anomaly

        thr = float(anomaly.threshold_from_scores(self.anomaly_score(x_normal, method=method), quantile))
        self._threshold = (method, thr)
        return thr

    def is_anomaly(self, x: Any) -> np.ndarray:
        """Boolean ``(N,)``: score above the calibrated threshold, else the card's
        ``anomaly.threshold`` (with the card's ``anomaly.method``). CardError if neither exists."""
        if self._threshold is not None:
            method, thr = self._threshold
        else:
            card_thr = self.card.get_float("anomaly.threshold")
            if card_thr is None:
                raise CardError(f"model {self.model!r} has no anomaly.threshold in its card; "
                                "call calibrate(x_normal) first")
            method, thr = self.card.anomaly.get("method", "mse"), card_thr
        return self.anomaly_score(x, method=method) > thr

    # ---- compression -----------------------------------------------------------------
    def compress(self, x: Any, *, bits: int | None = None) -> bytes:
        """Images -> a self-describing byte payload (quantized, entropy-coded latents, checksummed).

        ``bits`` per latent dimension (default ``compress.DEFAULT_BITS``) trades bytes for PSNR.
        """
        from . import compress

        z = self.encode(x)
        return compress.encode_payload(z, model=self.model, version=self._info.version, card=self.card,
                                       bits=compress.DEFAULT_BITS if bits is None else bits)

    def decompress(self, blob: bytes) -> np.ndarray:
        """Payload from ``compress`` -> images ``(N, C, H, W)``. PayloadError if the payload is
        corrupt, truncated, foreign or made by another model/version."""
        from . import compress

        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise PayloadError(f"payload must be bytes (from Client.compress), got {type(blob).__name__}")
        z = compress.decode_payload(bytes(blob), model=self.model, version=self._info.version, card=self.card)
        return self.decode(z)


def _temperature(t: Any) -> np.float32:
    try:
        f = float(t)
    except (TypeError, ValueError):
        raise InputError(f"temperature must be a number >= 0, got {t!r}") from None
    if isinstance(t, (bool, np.bool_)) or not np.isfinite(f) or f < 0:
        raise InputError(f"temperature must be a finite number >= 0, got {t!r}")
    return np.float32(f)
