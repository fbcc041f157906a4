"""Faults against real Triton servers of our own (never the shared session server):

- the server is killed (SIGKILL) in the middle of a long streamed ``generate``: the call
  raises a typed aeserve ServerError within the client's timeout - no hang, no partial
  result - and stopping the dead server leaves no process or shared-memory segment;
- a server restarted on the same ports: the very same Client recovers on its next call;
- a hung server (SIGSTOP): aeserve TimeoutError within the timeout; resumed: works again;
- explicit model control, model unloaded: ModelNotReadyError; loaded again: works.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
import tritonclient.http as thttp
from serve_helpers import copy_model_pair

from aeserve import Client
from aeserve.errors import ModelNotReadyError, ServerError, TimeoutError
from aeserve.serve import admin_headers, free_ports, serve
from aeserve.serve.process import group_members, shm_segments

pytestmark = pytest.mark.triton
TIMEOUT = 5.0


@pytest.fixture(scope="module")
def small_repo(serving_repository, tmp_path_factory):
    """One VAE model (its encoder and decoder) copied out of the served repository: quick to start."""
    return copy_model_pair(serving_repository, tmp_path_factory.mktemp("faults") / "repo")


def stream_until_killed(client: Client, started: threading.Event, server,
                        n: int) -> tuple[BaseException | None, object, float]:
    """Run generate(n) in a thread, SIGKILL the server once ``started`` (some chunks back);
    return (error, result, seconds from the kill until the call ended)."""
    box: dict = {}

    def run() -> None:
        try:
            box["result"] = client.generate(n, seed=0)
        except BaseException as e:  # noqa: BLE001 - inspected by the test
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert started.wait(60), "generate made no progress"
    assert t.is_alive(), "generate finished before the kill; make n larger"
    os.kill(server.pid, signal.SIGKILL)
    killed = time.monotonic()
    t.join(TIMEOUT * 3 + 10)
    elapsed = time.monotonic() - killed
    assert not t.is_alive(), f"generate still hanging {elapsed:.1f} s after the server was killed"
    return box.get("error"), box.get("result"), elapsed


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_kill_mid_stream_then_restart_on_same_ports(small_repo, protocol):
    root, name = small_repo
    h, g, m = free_ports(3)
    first = serve(root, http_port=h, grpc_port=g, metrics_port=m, restart=None)  # stays dead: restarted by hand
    try:
        url = first.url_grpc if protocol == "grpc" else first.url_http
        started = threading.Event()
        client = Client(url, model=name, timeout=TIMEOUT, connect_timeout=TIMEOUT,
                        progress=lambda done, total: done >= 3 and started.set())
        error, result, elapsed = stream_until_killed(client, started, first, n=400_000)
        print(f"\n{protocol}: {type(error).__name__} {elapsed:.2f} s after SIGKILL: {error}")
        assert result is None, "a partial result was returned as if whole"
        assert isinstance(error, ServerError), f"expected a typed aeserve ServerError, got {error!r}"
        assert elapsed < TIMEOUT + 5
    finally:
        first.stop()
    assert not group_members(first.pid), "Python-backend stubs outlived the killed server"
    assert not shm_segments(first.shm_prefix), "shared-memory segments left behind"
    assert not first.workdir.exists()

    second = serve(root, http_port=h, grpc_port=g, metrics_port=m)
    try:
        with Client(None, model=name, repository=root) as local:
            want = local.generate(300, seed=11)
        got = client.generate(300, seed=11)  # the same Client object as before the crash
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        client.close()
    finally:
        second.stop()


@pytest.fixture(scope="module")
def explicit_server(small_repo):
    """Our own server over the small repository, explicit model control."""
    root, _ = small_repo
    h, g, m = free_ports(3)
    with serve(root, http_port=h, grpc_port=g, metrics_port=m, model_control="explicit") as server:
        yield server


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_hung_server_times_out_then_recovers(explicit_server, small_repo, protocol):
    _, name = small_repo
    url = explicit_server.url_grpc if protocol == "grpc" else explicit_server.url_http
    with Client(url, model=name, timeout=2.0) as client:
        z = np.zeros((4, client.card.latent_dim), np.float32)
        assert client.decode(z).shape[0] == 4
        os.kill(explicit_server.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            with pytest.raises(TimeoutError, match="did not complete within 2 s"):
                client.decode(z)
            elapsed = time.monotonic() - t0
        finally:
            os.kill(explicit_server.pid, signal.SIGCONT)
        print(f"\n{protocol}: hung server -> TimeoutError after {elapsed:.2f} s (timeout 2 s)")
        assert elapsed < 15      # the 2 s timeout, not the 30 s default, bounded the call
        assert client.decode(z).shape[0] == 4


def test_unloaded_model_is_not_ready_then_reloads(explicit_server, small_repo):
    _, name = small_repo
    server = explicit_server
    admin = thttp.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    clients = [Client(server.url_http, model=name, timeout=TIMEOUT),
               Client(server.url_grpc, model=name, timeout=TIMEOUT)]
    try:
        z = np.zeros((4, clients[0].card.latent_dim), np.float32)
        for c in clients:
            assert c.decode(z).shape[0] == 4
        admin.unload_model(f"{name}_decoder", headers=admin_headers(server.api_key))
        deadline = time.monotonic() + 30
        while admin.is_model_ready(f"{name}_decoder") and time.monotonic() < deadline:
            time.sleep(0.1)
        for c in clients:
            with pytest.raises(ModelNotReadyError, match=f"{name}_decoder"):
                c.decode(z)
            with pytest.raises(ModelNotReadyError):
                c.generate(3)
            assert c.encode(np.zeros((2, *c.card.input_shape), np.float32)).shape[0] == 2  # encoder unaffected
        admin.load_model(f"{name}_decoder", headers=admin_headers(server.api_key))
        for c in clients:
            assert c.decode(z).shape[0] == 4
    finally:
        for c in clients:
            c.close()
        admin.close()
