"""aeserve.runtime.triton (unit level): URL parsing, error mapping, timeouts, no hangs.

A tiny fake of Triton's HTTP/REST v2 protocol stands in for the server here; the
end-to-end tests against the real bundled Triton live with the serving tests.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from aeserve import runtime
from aeserve.card import ModelCard
from aeserve.errors import (
    CardError,
    ConfigError,
    InferenceError,
    InputError,
    ModelNotFoundError,
    ModelNotReadyError,
    ServerError,
    ServerUnavailableError,
    TimeoutError,
)
from aeserve.runtime.triton import TritonRuntime
from aeserve.runtime.triton_errors import map_error
from aeserve.runtime.urls import Endpoint, parse_url

# ---- URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize("url, expected", [
    ("http://localhost", Endpoint("http", "localhost", 8000)),
    ("grpc://localhost", Endpoint("grpc", "localhost", 8001)),
    ("HTTP://triton.example:9000/", Endpoint("http", "triton.example", 9000)),
    ("grpc://10.0.0.1:1234", Endpoint("grpc", "10.0.0.1", 1234)),
    ("https://secure", Endpoint("https", "secure", 443)),
    ("grpc://[::1]", Endpoint("grpc", "[::1]", 8001)),
])
def test_parse_url_defaults(url, expected):
    ep = parse_url(url)
    assert ep == expected
    assert ep.protocol == ("grpc" if ep.scheme.startswith("grpc") else "http")
    assert ep.address == f"{expected.host}:{expected.port}"


@pytest.mark.parametrize("url, err, match", [
    ("localhost:8000", InputError, "no scheme"),
    ("", InputError, "non-empty"),
    (None, InputError, "non-empty"),
    ("ftp://host", ConfigError, "unsupported URL scheme 'ftp'"),
    ("http://host:99999", ConfigError, "malformed"),
    ("http://host:8000/v2/models", ConfigError, "path"),
    ("http://", InputError, "no valid host"),
    ("grpc://bad host", InputError, "no valid host"),
])
def test_parse_url_errors(url, err, match):
    with pytest.raises(err, match=match):
        parse_url(url)


# ---- error mapping --------------------------------------------------------------------


def _ise(msg, status):
    from tritonclient.utils import InferenceServerException

    return InferenceServerException(msg, status=status)


@pytest.mark.parametrize("exc, loaded, cls", [
    (_ise("failed to connect to all addresses", "StatusCode.UNAVAILABLE"), False, ServerUnavailableError),
    (_ise("Deadline Exceeded", "StatusCode.DEADLINE_EXCEEDED"), False, TimeoutError),
    (_ise("Request for unknown model: 'x' is not found", "StatusCode.NOT_FOUND"), False, ModelNotFoundError),
    (_ise("Request for unknown model: 'x' is not found", "404"), False, ModelNotFoundError),
    # the same status for a model this runtime saw ready: it was unloaded since
    (_ise("Request for unknown model: 'x' has no available versions", "404"), True, ModelNotReadyError),
    (_ise("Request for unknown model: 'x' has no available versions", "StatusCode.NOT_FOUND"), True,
     ModelNotReadyError),
    (_ise("This API is restricted, expecting header 'k'", "403"), False, ServerError),
    (_ise("unexpected shape for input 'x'", "400"), False, InferenceError),
    (_ise("Service Unavailable", "503"), False, ServerUnavailableError),
    (_ise("timed out", "400"), False, InferenceError),                # the status decides, not the words
    (_ise("model not found", "503"), True, ServerUnavailableError),
    (ConnectionRefusedError(111, "Connection refused"), False, ServerUnavailableError),
    (socket.timeout("timed out"), False, TimeoutError),
    (BrokenPipeError(32, "Broken pipe"), False, ServerUnavailableError),
    (RuntimeError("weird"), False, InferenceError),
])
def test_map_error(exc, loaded, cls):
    e = map_error(exc, what="inference", target="grpc://h:8001", model="m_encoder", timeout=2.0, loaded=loaded)
    assert type(e) is cls
    assert "grpc://h:8001" in str(e)


def test_aeserve_timeout_is_also_the_builtin_timeout():
    import builtins

    e = map_error(socket.timeout("timed out"), what="inference", target="grpc://h:8001", timeout=2.0)
    assert isinstance(e, builtins.TimeoutError) and isinstance(e, ServerError)
    with pytest.raises(builtins.TimeoutError):
        raise e


def test_map_gevent_timeout():
    import gevent

    e = map_error(gevent.Timeout(1.0), what="inference", target="http://h:8000", timeout=1.0)
    assert isinstance(e, TimeoutError) and "within 1 s" in str(e)


# ---- unreachable / hung servers -------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("scheme", ["http", "grpc"])
def test_unreachable_server_fails_fast(scheme):
    t0 = time.monotonic()
    with pytest.raises(ServerUnavailableError, match="unreachable"):
        TritonRuntime(f"{scheme}://127.0.0.1:{_free_port()}", connect_timeout=1)
    assert time.monotonic() - t0 < 5     # well under the 5 s default: the 1 s given was used, not a hang


@pytest.fixture
def silent_server():
    """Accepts TCP connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    conns, stop = [], threading.Event()

    def accept():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                pass

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    yield srv.getsockname()[1]
    stop.set()
    th.join()
    for c in conns:
        c.close()
    srv.close()


@pytest.mark.parametrize("scheme", ["http", "grpc"])
def test_hung_server_times_out_on_readiness(silent_server, scheme):
    t0 = time.monotonic()
    with pytest.raises(ServerUnavailableError, match="readiness check"):
        runtime.connect(f"{scheme}://127.0.0.1:{silent_server}", connect_timeout=1)
    assert time.monotonic() - t0 < 5     # under the 5 s default connect_timeout: the 1 s was honoured


# ---- a fake Triton HTTP server ----------------------------------------------------------

CARD = ModelCard("ae", "mlp", (1, 4, 4), 2, "bernoulli", "toy")


class FakeTriton(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: dict = {}

    def log_message(self, *a):  # quiet
        pass

    def _send(self, code: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _models(self):
        return self.state["models"]

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if parts[:3] == ["v2", "health", "ready"]:
            return self._send(200 if self.state.get("ready", True) else 503, {})
        if parts[:2] == ["v2", "models"] and len(parts) >= 3:
            name = parts[2]
            m = self._models().get(name)
            if m is None:
                return self._send(400, {"error": f"Request for unknown model: '{name}' is not found"})
            if parts[3:] == ["ready"]:
                return self._send(200 if m["state"] == "READY" else 400, {})
            if parts[3:] == ["config"]:
                params = {k: {"string_value": v} for k, v in m["card"].items()}
                return self._send(200, {"name": name, "max_batch_size": m["mbs"], "parameters": params})
            if parts[3:] == []:
                return self._send(200, {"name": name, "versions": ["3"], "platform": "onnxruntime_onnx"})
        self._send(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        parts = self.path.strip("/").split("/")
        if parts == ["v2", "repository", "index"]:
            return self._send(200, [{"name": n, "version": "3", "state": m["state"]}
                                    for n, m in self._models().items()])
        if parts[:2] == ["v2", "models"] and parts[-1] == "infer":
            mode = self.state.get("infer", "ok")
            if mode == "hang":
                time.sleep(3)
                return self._send(500, {"error": "too late"})
            if mode == "error":
                return self._send(400, {"error": "unexpected shape for input 'x'"})
            hdr_len = int(self.headers.get("Inference-Header-Content-Length", length))
            req = json.loads(body[:hdr_len])
            n = req["inputs"][0]["shape"][0]
            name = parts[2]
            out = ({"name": "z", "datatype": "FP32", "shape": [n, 2], "data": [0.5] * (2 * n)}
                   if name.endswith("_encoder") else
                   {"name": "x_hat", "datatype": "FP32", "shape": [n, 1, 4, 4], "data": [0.25] * (16 * n)})
            return self._send(200, {"model_name": name, "outputs": [out]})
        self._send(404, {"error": "not found"})


@pytest.fixture
def fake():
    FakeTriton.state = {"models": {
        "toy_encoder": {"state": "READY", "mbs": 4, "card": CARD.to_dict()},
        "toy_decoder": {"state": "READY", "mbs": 8, "card": CARD.to_dict()},
        "half_encoder": {"state": "READY", "mbs": 4, "card": CARD.to_dict()},
        "half_decoder": {"state": "UNAVAILABLE", "mbs": 4, "card": CARD.to_dict()},
        "bad_encoder": {"state": "READY", "mbs": 4, "card": {"aeserve.family": "ae"}},
        "bad_decoder": {"state": "READY", "mbs": 4, "card": {}},
    }}
    srv = ThreadingHTTPServer(("127.0.0.1", 0), FakeTriton)
    srv.daemon_threads = True
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield srv, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_fake_server_metadata_and_inference(fake):
    _, url = fake
    with TritonRuntime(url, timeout=2, connect_timeout=1) as rt:
        assert rt.models() == ["bad", "toy"]          # "half" has an unready decoder
        info = rt.model_info("toy")
        assert (info.max_batch_size, info.version) == (4, 3) and info.card == CARD
        z = rt.encode("toy", np.zeros((3, 1, 4, 4), np.float32))["z"]
        assert z.shape == (3, 2) and z.dtype == np.float32 and np.all(z == 0.5)
        assert rt.decode("toy", z).shape == (3, 1, 4, 4)
        with pytest.raises(ModelNotFoundError, match="available: bad, toy"):
            rt.model_info("nope")
        with pytest.raises(ModelNotReadyError, match="half_decoder.*not ready.*UNAVAILABLE"):
            rt.model_info("half")
        with pytest.raises(CardError, match="bad_encoder.*missing"):
            rt.model_info("bad")
        with pytest.raises(InputError, match="1..4"):
            rt.encode("toy", np.zeros((5, 1, 4, 4), np.float32))


def test_fake_server_request_errors_are_typed_and_bounded(fake):
    srv, url = fake
    rt = TritonRuntime(url, timeout=1, connect_timeout=1)
    x = np.zeros((2, 1, 4, 4), np.float32)
    FakeTriton.state["infer"] = "error"
    with pytest.raises(InferenceError, match="unexpected shape"):
        rt.encode("toy", x)
    FakeTriton.state["infer"] = "hang"
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="within 1 s"):
        rt.encode("toy", x)
    assert time.monotonic() - t0 < 15    # bounded by the 1 s timeout, far under the 30 s default
    FakeTriton.state["infer"] = "ok"
    srv.shutdown()
    srv.server_close()
    time.sleep(0.1)
    t0 = time.monotonic()
    with pytest.raises((ServerUnavailableError, TimeoutError)):
        for _ in range(2):  # the first call may reuse a kept-alive socket
            rt.encode("toy", x)
    assert time.monotonic() - t0 < 15    # bounded (no hang), far under the 30 s default
    rt.close()


def test_unready_server_is_unavailable(fake):
    _, url = fake
    FakeTriton.state["ready"] = False
    with pytest.raises(ServerUnavailableError, match="not ready"):
        TritonRuntime(url, connect_timeout=1)


def test_runtime_works_from_many_threads(fake):
    from concurrent.futures import ThreadPoolExecutor

    _, url = fake
    with TritonRuntime(url, timeout=5, connect_timeout=1) as rt:
        with ThreadPoolExecutor(4) as pool:
            outs = list(pool.map(lambda i: rt.encode("toy", np.zeros((1 + i % 4, 1, 4, 4), np.float32))["z"],
                                 range(16)))
        assert [o.shape[0] for o in outs] == [1 + i % 4 for i in range(16)]


def test_lost_connection_and_reconnect_are_logged(fake, caplog, monkeypatch):
    import logging

    monkeypatch.setattr(FakeTriton, "protocol_version", "HTTP/1.0")  # no kept-alive socket outlives the server
    srv, url = fake
    port = srv.server_address[1]
    x = np.zeros((1, 1, 4, 4), np.float32)
    with caplog.at_level(logging.INFO, "aeserve"), TritonRuntime(url, timeout=1, connect_timeout=1) as rt:
        rt.encode("toy", x)
        srv.shutdown()
        srv.server_close()
        with pytest.raises(ServerUnavailableError):
            rt.encode("toy", x)
        assert any(r.levelno == logging.WARNING and "dropping this thread's connection" in r.getMessage()
                   for r in caplog.records)
        again = ThreadingHTTPServer(("127.0.0.1", port), FakeTriton)
        threading.Thread(target=again.serve_forever, daemon=True).start()
        try:
            assert rt.encode("toy", x)["z"].shape == (1, 2)
        finally:
            again.shutdown()
            again.server_close()
    assert any("reconnecting to" in r.getMessage() for r in caplog.records)
