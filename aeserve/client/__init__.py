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
All randomness is drawn here with counter-based noise (``aeserve.noise.standard_normal``):
item ``i`` depends only on ``(seed, i)``, so results do not depend on ``n``, chunking,
concurrency or the runtime. Every bad input raises a typed ``aeserve`` error.

The package holds the core (``base``: connection, dispatch, encode/decode) and one module
per group of operations (``generation``, ``arithmetic``, ``scoring``, ``compression``, ``restoration``,
``maps``, ``features``), combined here.
"""

from __future__ import annotations

from .arithmetic import ArithmeticOps
from .base import DEFAULT_MODEL, POSTERIORS, ClientBase
from .compression import CompressionOps
from .features import FeatureOps
from .generation import PRIORS, GenerationOps
from .maps import MAP_METHODS, MapOps
from .restoration import RestorationOps
from .scoring import SCORE_METHODS, ScoringOps


class Client(GenerationOps, ArithmeticOps, ScoringOps, CompressionOps, RestorationOps, MapOps, FeatureOps, ClientBase):
    """Encode, decode, generate, interpolate, denoise, score and compress with one model.

    ``url`` None -> embedded over ``repository`` if given, else ``$AESERVE_URL``, else embedded
    over ``aeserve.repository.default_repository()``; ``http://``/``grpc://`` -> Triton.
    ``model`` None -> ``mnist_vae`` if present, else the first model. ``timeout`` bounds
    each server request, ``connect_timeout`` the readiness check. ``progress``: True for a
    tqdm bar on long calls, or a callable ``(done, total)``.

    Raises ModelNotFoundError (unknown model; the message lists the available ones),
    ServerUnavailableError (unreachable/unready server), RepositoryError, CardError.
    """


__all__ = ["Client", "DEFAULT_MODEL", "MAP_METHODS", "POSTERIORS", "PRIORS", "SCORE_METHODS"]
