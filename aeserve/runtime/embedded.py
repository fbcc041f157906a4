"""In-process runtime: ONNX Runtime sessions over a local model repository.

    rt = EmbeddedRuntime("model_repository")
    rt.encode("mnist_vae", x)          # {"mu": (n, 16), "logvar": (n, 16)}
    rt.providers("mnist_vae")          # ["CPUExecutionProvider"] (what really runs)

Sessions are created on first use, once per graph, and shared by all threads
(``InferenceSession.run`` is thread-safe). A request made inside ``rt.alone()`` (the Client's
one-chunk calls) runs on a second session of the graph with ``solo_threads`` intra-op
threads, spinning where no torch shares the process: a small call then has all the cores
and no thread wake-up latency, while chunked calls keep ``intra_op_threads`` per request.
CUDA is used when the GPU build of ONNX Runtime is installed and a GPU is present: the
decision is read back from ``session.get_providers()``. ORT errors become ``InferenceError``.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import numpy as np

from ..contract import CLASSIFIER_OUTPUT, DECODER_INPUT, DECODER_OUTPUT, ENCODER_INPUT, encoder_outputs
from ..errors import ClientClosedError, InferenceError, RepositoryError
from ..ort_session import session_options, spinning_allowed
from ..repository import CLASSIFIER_SUFFIX, Repository, RepositoryModel, config_params
from .base import ModelInfo, Runtime, check_pair, check_request

log = logging.getLogger(__name__)


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as e:
        raise InferenceError("the embedded runtime needs ONNX Runtime: pip install 'aeserve[cpu]' "
                             "(or 'aeserve[gpu]'), or pass a Triton URL") from e
    return onnxruntime


class EmbeddedRuntime(Runtime):
    """ONNX Runtime over ``Repository(root)``; ``root`` None -> default_repository().

    ``intra_op_threads``: ORT threads per session of requests that run side by side (0: ORT's
    default); ``solo_threads``: per session of requests made inside ``alone()`` (0: the same
    as ``intra_op_threads``, and then one session serves both)."""

    def __init__(self, root: str | os.PathLike[str] | None = None, *, intra_op_threads: int = 0,
                 solo_threads: int = 0):
        self.repository = Repository(root)
        self.target = f"embedded:{self.repository.root}"
        self._intra = int(intra_op_threads)
        self._solo = int(solo_threads) if solo_threads and int(solo_threads) != self._intra else 0
        self._alone = threading.local()
        self._lock = threading.Lock()
        self._models: dict[str, RepositoryModel] = {}
        self._infos: dict[str, ModelInfo] = {}
        self._sessions: dict[str, Any] = {}
        self._closed = False

    # ---- metadata --------------------------------------------------------------------
    def models(self) -> list[str]:
        return self.repository.models()

    def _model(self, name: str) -> RepositoryModel:
        m = self._models.get(name)
        if m is None:
            m = self.repository.model(name)
            self._models[name] = m
        return m

    def model_info(self, name: str) -> ModelInfo:
        info = self._infos.get(name)
        if info is None:
            m = self._model(name)
            check_pair(name, config_params(m.encoder_config), config_params(m.decoder_config), self.target)
            if m.max_batch_size < 1:
                raise RepositoryError(f"model {name!r} in {self.repository.root} has max_batch_size "
                                      f"{m.max_batch_size}; expected >= 1 (batched models only)")
            info = ModelInfo(name, m.card, int(m.max_batch_size), m.served_version(m.encoder_name))
            self._infos[name] = info
        return info

    # ---- sessions --------------------------------------------------------------------
    def alone(self) -> "_Alone":
        return _Alone(self._alone)

    def _session(self, name: str, part: str) -> Any:
        solo = self._solo > 0 and getattr(self._alone, "on", False)
        key = f"{name}_{part}" + ("/solo" if solo else "")
        sess = self._sessions.get(key)
        if sess is not None:
            return sess
        with self._lock:
            if self._closed:
                raise ClientClosedError(f"the embedded runtime over {self.repository.root} is closed")
            sess = self._sessions.get(key)
            if sess is None:
                if part == "classifier":  # one graph: no encoder/decoder pair to check
                    sess = self._sessions[key] = self._create(self.repository.classifier(name).path(), solo)
                    return sess
                m = self._model(name)
                path = m.encoder_path() if part == "encoder" else m.decoder_path()
                sess = self._create(path, solo)
                config = m.encoder_config if part == "encoder" else m.decoder_config
                check_pair(name, config_params(config), sess.get_modelmeta().custom_metadata_map,
                           self.target, parts=(f"{part} config.pbtxt", f"{part} graph {path}"))
                self._sessions[key] = sess
        return sess

    def _create(self, path: os.PathLike[str], solo: bool = False) -> Any:
        ort = _ort()
        opts = session_options(self._solo, spinning=spinning_allowed()) if solo else session_options(self._intra)
        providers = ["CPUExecutionProvider"]
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            sess = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as e:  # ORT raises its own pybind exception types
            if providers[0] != "CPUExecutionProvider":
                log.warning("ONNX Runtime could not create a CUDA session for %s (%s); falling back to CPU",
                            path, _short(e))
                try:  # GPU build without a usable GPU: fall back to CPU
                    sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
                except Exception:
                    sess = None
                if sess is not None:
                    return sess
            raise InferenceError(f"ONNX Runtime cannot load {path}: {_short(e)}") from e
        used = sess.get_providers()
        if providers[0] == "CUDAExecutionProvider" and used[0] != "CUDAExecutionProvider":
            log.warning("ONNX Runtime runs %s on %s although CUDA was requested (no usable GPU?)", path, used[0])
        else:
            log.debug("ONNX Runtime session for %s on %s", path, ", ".join(used))
        return sess

    def providers(self, name: str) -> list[str]:
        """Execution providers that really run ``name``'s encoder (from session.get_providers())."""
        return list(self._session(name, "encoder").get_providers())

    # ---- inference -------------------------------------------------------------------
    def encode(self, name: str, x: np.ndarray) -> dict[str, np.ndarray]:
        info = self.model_info(name)
        x = check_request(info, x, info.card.input_shape, "encoder input")
        names = list(encoder_outputs(info.card))
        outs = self._run(self._session(name, "encoder"), names, {ENCODER_INPUT: x}, name + "_encoder")
        return dict(zip(names, outs))

    def decode(self, name: str, z: np.ndarray) -> np.ndarray:
        info = self.model_info(name)
        z = check_request(info, z, (info.card.latent_dim,), "decoder input")
        return self._run(self._session(name, "decoder"), [DECODER_OUTPUT], {DECODER_INPUT: z}, name + "_decoder")[0]

    def classifiers(self) -> list[str]:
        return self.repository.classifiers()

    def classifier_info(self, name: str) -> ModelInfo:
        key = name + CLASSIFIER_SUFFIX
        info = self._infos.get(key)
        if info is None:
            k = self.repository.classifier(name)
            if k.max_batch_size < 1:
                raise RepositoryError(f"classifier {key!r} has max_batch_size {k.max_batch_size}; expected >= 1")
            info = self._infos[key] = ModelInfo(name, k.card, int(k.max_batch_size), int(k.served_version))
        return info

    def classify(self, name: str, x: np.ndarray) -> np.ndarray:
        info = self.classifier_info(name)
        x = check_request(info, x, info.card.input_shape, "classifier input")
        sess = self._session(name, "classifier")
        return self._run(sess, [CLASSIFIER_OUTPUT], {ENCODER_INPUT: x}, name + CLASSIFIER_SUFFIX)[0]

    @staticmethod
    def _run(sess: Any, outputs: list[str], feeds: dict[str, np.ndarray], graph: str) -> list[np.ndarray]:
        try:
            res = sess.run(outputs, feeds)
        except Exception as e:
            raise InferenceError(f"ONNX Runtime failed on {graph}: {_short(e)}") from e
        return [np.asarray(r, dtype=np.float32) for r in res]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._sessions.clear()


class _Alone:
    """``EmbeddedRuntime.alone()``: sets the calling thread's flag for the block (a class, not a
    generator: it wraps every small call)."""

    __slots__ = ("_flag", "_before")

    def __init__(self, flag: threading.local):
        self._flag = flag

    def __enter__(self) -> None:
        self._before = getattr(self._flag, "on", False)
        self._flag.on = True

    def __exit__(self, *exc: object) -> None:
        self._flag.on = self._before


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


__all__ = ["EmbeddedRuntime"]
