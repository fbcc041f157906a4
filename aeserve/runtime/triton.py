"""Triton runtime: the same two graphs per model, served by a Triton server.

    rt = TritonRuntime("grpc://localhost:8001", timeout=30, connect_timeout=5)
    rt.models()                         # ready encoder/decoder pairs on the server
    rt.model_info("mnist_vae").card     # card read from get_model_config parameters
    rt.encode("mnist_vae", x)           # {"mu": ..., "logvar": ...}

HTTP or gRPC is chosen by URL scheme (``http://host[:8000]``, ``grpc://host[:8001]``).
Construction checks that the server is ready (ServerUnavailableError otherwise, within
``connect_timeout``). Every request has an explicit deadline (``timeout``). Each thread gets
its own tritonclient client (the HTTP client is gevent-based and not shareable between
threads). Every tritonclient/socket/gevent/gRPC failure is mapped to an aeserve error by
``aeserve.runtime.triton_errors`` (by type and status code) and chained to its cause.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any, Callable

import numpy as np

from ..card import ModelCard
from ..checks import check_seconds
from ..contract import CLASSIFIER_OUTPUT, DECODER_INPUT, DECODER_OUTPUT, ENCODER_INPUT, encoder_outputs
from ..errors import (
    AeserveError,
    CardError,
    ClientClosedError,
    InferenceError,
    ModelNotFoundError,
    ModelNotReadyError,
    ServerError,
    ServerUnavailableError,
    TimeoutError,
)
from .base import ModelInfo, Runtime, check_pair, check_request
from .triton_errors import map_error, short_text
from .urls import Endpoint, parse_url

ENC, DEC, CLF = "_encoder", "_decoder", "_classifier"
log = logging.getLogger(__name__)


class TritonRuntime(Runtime):
    """tritonclient HTTP/gRPC over ``url``; raises ServerUnavailableError if not ready."""

    def __init__(self, url: str, *, timeout: float = 30.0, connect_timeout: float = 5.0):
        self.endpoint: Endpoint = parse_url(url)
        self.target = str(self.endpoint)
        self.timeout = check_seconds(timeout, "timeout")
        self.connect_timeout = check_seconds(connect_timeout, "connect_timeout")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._clients: weakref.WeakSet[Any] = weakref.WeakSet()  # one per thread; dead threads' go away
        self._infos: dict[str, ModelInfo] = {}
        self._closed = False
        if self.endpoint.protocol == "http":
            import tritonclient.http as tc
        else:
            import tritonclient.grpc as tc
        self._tc = tc
        self._check_server()

    # ---- clients ---------------------------------------------------------------------
    def _new_client(self, network_timeout: float) -> Any:
        ep = self.endpoint
        try:
            if ep.protocol == "http":
                return self._tc.InferenceServerClient(ep.address, connection_timeout=self.connect_timeout,
                                                      network_timeout=network_timeout, ssl=ep.ssl)
            return self._tc.InferenceServerClient(ep.address, ssl=ep.ssl)
        except Exception as e:
            raise ServerUnavailableError(f"cannot create a client for {self.target}: {short_text(e)}") from e

    def _client(self) -> Any:
        c = getattr(self._local, "client", None)
        if c is None:
            if self._closed:
                raise ClientClosedError(f"the connection to {self.target} is closed")
            c = self._local.client = self._new_client(self.timeout)
            with self._lock:
                self._clients.add(c)
            if getattr(self._local, "dropped", False):
                self._local.dropped = False
                log.info("reconnecting to %s", self.target)
        return c

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, model: str | None = None,
              client: Any = None, deadline: float | None = None, loaded: bool = False, **kwargs: Any) -> Any:
        """Run one tritonclient call, mapping every failure to an aeserve error (``triton_errors``);
        ``loaded``: ``model`` was ready before, so "not found" now means unloaded."""
        if self.endpoint.protocol == "grpc":
            kwargs["client_timeout"] = deadline or self.timeout
        c = client if client is not None else self._client()
        try:
            return fn(c, *args, **kwargs)
        except AeserveError:
            raise
        except BaseException as e:  # gevent.Timeout derives from BaseException
            if isinstance(e, (KeyboardInterrupt, SystemExit, GeneratorExit)):
                raise
            err = map_error(e, what=what, target=self.target, model=model, timeout=deadline or self.timeout,
                            loaded=loaded)
            if client is None and isinstance(err, ServerUnavailableError):
                log.warning("%s: %s; dropping this thread's connection, the next call reconnects", what, err)
                self._drop_thread_client(c)
            raise err from e

    def _drop_thread_client(self, c: Any) -> None:
        """Forget this thread's connection after the server went away, so the next call
        reconnects at once (a gRPC channel would otherwise sit in reconnect backoff)."""
        if getattr(self._local, "client", None) is c:
            self._local.client = None
            self._local.dropped = True
        with self._lock:
            self._clients.discard(c)
        _close_quietly(c)

    # ---- readiness and metadata ------------------------------------------------------
    def _check_server(self) -> None:
        probe = self._new_client(self.connect_timeout)
        try:
            ready = self._call("readiness check", lambda c, **kw: c.is_server_ready(**kw),
                               client=probe, deadline=self.connect_timeout)
        except (TimeoutError, InferenceError) as e:
            raise ServerUnavailableError(f"Triton server at {self.target} failed its readiness check: {e}") from e
        finally:
            _close_quietly(probe)
        if not ready:
            raise ServerUnavailableError(f"Triton server at {self.target} is up but not ready; "
                                         "wait for it to finish loading models")

    def _index(self) -> dict[str, str]:
        """Triton model name -> state (READY, UNAVAILABLE, ...)."""
        try:
            if self.endpoint.protocol == "http":
                rows = self._call("repository index", lambda c, **kw: c.get_model_repository_index(**kw))
            else:
                rows = self._call("repository index",
                                  lambda c, **kw: c.get_model_repository_index(as_json=True, **kw)).get("models", [])
        except ServerUnavailableError as e:
            # Triton's gRPC frontend answers a restricted repository API with UNAVAILABLE:
            # a server that is live has refused us rather than gone away.
            if self.endpoint.protocol == "grpc" and self._live():
                raise ServerError(f"repository index on {self.target} refused: the server restricts this API "
                                  "to callers with its API key") from e
            raise
        out: dict[str, str] = {}
        for r in rows or []:
            name, state = r.get("name", ""), r.get("state", "")
            if out.get(name) != "READY":
                out[name] = state
        return out

    def _live(self) -> bool:
        """Does the server answer a liveness probe (within ``connect_timeout``)?"""
        try:
            return bool(self._call("liveness check", lambda c, **kw: c.is_server_live(**kw),
                                   deadline=self.connect_timeout))
        except AeserveError:
            return False

    def models(self) -> list[str]:
        idx = self._index()
        return sorted(n[: -len(ENC)] for n, s in idx.items()
                      if n.endswith(ENC) and s == "READY" and idx.get(n[: -len(ENC)] + DEC) == "READY")

    def model_info(self, name: str) -> ModelInfo:
        info = self._infos.get(name)
        if info is not None:
            return info
        enc, dec = name + ENC, name + DEC
        for graph in (enc, dec):
            ready = self._call("model readiness", lambda c, **kw: c.is_model_ready(graph, **kw), model=graph)
            if not ready:
                idx = self._index()
                if graph in idx:
                    raise ModelNotReadyError(f"model {graph!r} on {self.target} is not ready (state "
                                             f"{idx[graph] or 'unknown'}); wait for it to load or check the server log")
                available = ", ".join(self.models()) or "none"
                raise ModelNotFoundError(f"model {name!r} not found on {self.target} (needs {enc} and {dec}); "
                                         f"available: {available}")
        cfg = self._config(enc)
        dec_cfg = self._config(dec)
        params, dec_params = _params(cfg), _params(dec_cfg)
        check_pair(name, params, dec_params, self.target)
        try:
            card = ModelCard.from_dict(params)
        except CardError as e:
            raise CardError(f"{enc} on {self.target}: {e}") from e
        mbs = min(int(cfg.get("max_batch_size", 0) or 0), int(dec_cfg.get("max_batch_size", 0) or 0))
        if mbs < 1:
            raise CardError(f"model {name!r} on {self.target} has max_batch_size {mbs}; expected >= 1")
        info = ModelInfo(name, card, mbs, self._latest_version(enc))
        self._infos[name] = info
        return info

    def _config(self, graph: str) -> dict[str, Any]:
        if self.endpoint.protocol == "http":
            return self._call("model config", lambda c, **kw: c.get_model_config(graph, **kw), model=graph)
        res = self._call("model config", lambda c, **kw: c.get_model_config(graph, as_json=True, **kw), model=graph)
        return res.get("config", res)

    def inference_statistics(self, graph: str) -> tuple[int, int]:
        """``(inference_count, execution_count)`` of ``graph`` (e.g. ``mnist_vae_decoder``) on the
        server, all versions summed: their ratio is the average batch the server executed."""
        kw = {} if self.endpoint.protocol == "http" else {"as_json": True}
        res = self._call("inference statistics",
                         lambda c, **k: c.get_inference_statistics(graph, **kw, **k), model=graph)
        stats = res.get("model_stats", [])
        return (sum(int(m.get("inference_count", 0)) for m in stats),
                sum(int(m.get("execution_count", 0)) for m in stats))

    # ---- inference -------------------------------------------------------------------
    def encode(self, name: str, x: np.ndarray) -> dict[str, np.ndarray]:
        info = self.model_info(name)
        x = check_request(info, x, info.card.input_shape, "encoder input")
        names = list(encoder_outputs(info.card))
        return dict(zip(names, self._infer(name + ENC, ENCODER_INPUT, x, names)))

    def decode(self, name: str, z: np.ndarray) -> np.ndarray:
        info = self.model_info(name)
        z = check_request(info, z, (info.card.latent_dim,), "decoder input")
        return self._infer(name + DEC, DECODER_INPUT, z, [DECODER_OUTPUT])[0]

    # ---- classifiers ------------------------------------------------------------------
    def classifiers(self) -> list[str]:
        return sorted(n[: -len(CLF)] for n, s in self._index().items() if n.endswith(CLF) and s == "READY")

    def classifier_info(self, name: str) -> ModelInfo:
        graph = name + CLF
        info = self._infos.get(graph)
        if info is not None:
            return info
        if not self._call("model readiness", lambda c, **kw: c.is_model_ready(graph, **kw), model=graph):
            state = self._index().get(graph)
            if state is not None:
                raise ModelNotReadyError(f"model {graph!r} on {self.target} is not ready (state {state or 'unknown'})")
            raise ModelNotFoundError(f"classifier {graph!r} not found on {self.target}; available: "
                                     f"{', '.join(c + CLF for c in self.classifiers()) or 'none'}")
        cfg = self._config(graph)
        params = {k: (v or {}).get("string_value", "") for k, v in (cfg.get("parameters") or {}).items()}
        try:
            card = ModelCard.from_dict(params)
        except CardError as e:
            raise CardError(f"{graph} on {self.target}: {e}") from None
        mbs = int(cfg.get("max_batch_size", 0) or 0)
        if mbs < 1 or card.get("task") != "classifier":
            raise CardError(f"{graph} on {self.target} is not a batched aeserve classifier "
                            f"(max_batch_size {mbs}, task {card.get('task')!r})")
        info = self._infos[graph] = ModelInfo(name, card, mbs, self._latest_version(graph))
        return info

    def classify(self, name: str, x: np.ndarray) -> np.ndarray:
        info = self.classifier_info(name)
        x = check_request(info, x, info.card.input_shape, "classifier input")
        return self._infer(name + CLF, ENCODER_INPUT, x, [CLASSIFIER_OUTPUT])[0]

    def _latest_version(self, graph: str) -> int:
        meta = self._call("model metadata", lambda c, **kw: c.get_model_metadata(graph, **kw), model=graph)
        if not isinstance(meta, dict):  # grpc without as_json
            meta = {"versions": list(getattr(meta, "versions", []))}
        versions = [int(v) for v in meta.get("versions", []) if str(v).isdigit()]
        return max(versions) if versions else 1

    def _infer(self, graph: str, input_name: str, arr: np.ndarray, outputs: list[str]) -> list[np.ndarray]:
        tc, http = self._tc, self.endpoint.protocol == "http"

        def run(c: Any, **kw: Any) -> list[np.ndarray]:
            inp = tc.InferInput(input_name, list(arr.shape), "FP32")
            if http:
                inp.set_data_from_numpy(arr, binary_data=True)
                outs = [tc.InferRequestedOutput(o, binary_data=True) for o in outputs]
            else:
                inp.set_data_from_numpy(arr)
                outs = [tc.InferRequestedOutput(o) for o in outputs]
            res = c.infer(graph, [inp], outputs=outs, **kw)
            return [res.as_numpy(o) for o in outputs]

        got = self._call("inference", run, model=graph, loaded=True)
        for o, a in zip(outputs, got):
            if a is None or a.shape[0] != arr.shape[0]:
                raise InferenceError(f"{graph} on {self.target} returned no/misshaped output {o!r} "
                                     f"(got {None if a is None else a.shape}, expected {arr.shape[0]} rows)")
        return [np.asarray(a, dtype=np.float32) for a in got]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            clients, self._clients = list(self._clients), weakref.WeakSet()
        for c in clients:
            _close_quietly(c)
        self._local = threading.local()


def _params(config: dict[str, Any]) -> dict[str, str]:
    """A model config's (JSON) ``parameters`` as a flat string map (the model card)."""
    return {k: (v or {}).get("string_value", "") for k, v in (config.get("parameters") or {}).items()}


def _close_quietly(c: Any) -> None:
    try:
        c.close()
    except BaseException:  # closing a gevent client from another thread may complain; nothing to do
        pass
