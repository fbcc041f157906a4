"""Every bad input to the Client raises a typed aeserve error with a helpful message,
against every runtime: embedded (the test repository) and a real Triton server over HTTP
and gRPC (the session's ``triton_server`` fixture from conftest)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _repo_fixtures import images

import aeserve
from aeserve.errors import (
    AeserveError,
    CardError,
    ConfigError,
    InputError,
    ModelNotFoundError,
    PayloadError,
    RepositoryError,
    ServerUnavailableError,
    SizeLimitError,
)

X = images(3)
BAD_INPUTS = {
    # name: (method, args, kwargs, exception, message regex)
    "wrong shape": ("encode", (np.zeros((2, 1, 32, 32), np.float32),), {}, InputError, r"expected \(N, 1, 28, 28\)"),
    "wrong channels": ("reconstruct", (np.zeros((2, 3, 28, 28), np.float32),), {}, InputError, "3 channel"),
    "flat vectors": ("encode", (np.zeros((2, 784), np.float32),), {}, InputError, "shape"),
    "int64 dtype": ("encode", (np.zeros((2, 1, 28, 28), np.int64),), {}, InputError, "dtype int64"),
    "string dtype": ("encode", (np.array([["a"]]),), {}, InputError, "dtype"),
    "NaN": ("denoise", (np.full((2, 1, 28, 28), np.nan, np.float32),), {}, InputError, "NaN"),
    "Inf": ("anomaly_score", (np.full((2, 1, 28, 28), np.inf),), {}, InputError, "NaN/Inf"),
    "out of range": ("compress", (X * 2,), {}, InputError, r"expected floats in \[0, 1\]"),
    "negative": ("encode", (X - 1,), {}, InputError, r"\[0, 1\]"),
    "empty": ("encode", (np.zeros((0, 1, 28, 28), np.float32),), {}, InputError, "empty"),
    "not an array": ("encode", ("x.png",), {}, InputError, "got str"),
    "n = 0": ("generate", (0,), {}, InputError, "n must be an integer >= 1"),
    "n < 0": ("generate", (-3,), {}, InputError, "n must be an integer >= 1"),
    "n float": ("generate", (2.5,), {}, InputError, "n must be"),
    "n bool": ("generate", (True,), {}, InputError, "n must be"),
    "negative seed": ("generate", (2,), {"seed": -1}, InputError, "seed"),
    "float seed": ("generate", (2,), {"seed": 1.5}, InputError, "seed"),
    "bad temperature": ("generate", (2,), {"temperature": -1.0}, InputError, "temperature"),
    "nan temperature": ("generate", (2,), {"temperature": float("nan")}, InputError, "temperature"),
    "steps < 2": ("interpolate", (X[0], X[1]), {"steps": 1}, InputError, "steps must be an integer >= 2"),
    "unknown interp method": ("interpolate", (X[0], X[1]), {"method": "cubic"}, ConfigError, "slerp, lerp"),
    "batch as endpoint": ("interpolate", (X, X[1]), {}, InputError, "batch of 3; expected one image"),
    "one-point path": ("interpolate_path", (X[:1],), {}, InputError, "at least 2"),
    "unknown posterior": ("encode", (X,), {"posterior": "mode"}, ConfigError, "mean, sample"),
    "unknown score method": ("anomaly_score", (X,), {"method": "iwae"}, ConfigError, "mse, elbo"),
    "k = 0": ("anomaly_score", (X,), {"method": "elbo", "k": 0}, InputError, "k must be an integer >= 1"),
    "bad quantile": ("calibrate", (X,), {"quantile": 1.5}, InputError, "quantile"),
    "latents wrong dim": ("decode", (np.zeros((2, 3), np.float32),), {}, InputError, r"expected \(N, \d+\)"),
    "latents NaN": ("decode", (np.full((2, 16), np.nan),), {}, InputError, "NaN"),
    "traverse dim": ("traverse", (X[0],), {"dim": 10**6, "values": [0.0]}, InputError, "out of range"),
    "traverse values": ("traverse", (X[0],), {"dim": 0, "values": []}, InputError, "empty"),
    "payload not bytes": ("decompress", ([1, 2, 3],), {}, PayloadError, "bytes"),
    "payload garbage": ("decompress", (b"\x00" * 64,), {}, PayloadError, "not an aeserve compress payload"),
    "payload empty": ("decompress", (b"",), {}, PayloadError, "not an aeserve compress payload"),
    # size limits: refused before anything is allocated (numpy MemoryError or minutes of work otherwise)
    "n = 10**9": ("generate", (10**9,), {}, SizeLimitError, r"generate\(n=1000000000\) would allocate .*TiB"),
    "n = 10**12": ("generate", (10**12,), {}, SizeLimitError, "would allocate"),
    "steps = 10**10": ("interpolate", (X[0], X[1]), {"steps": 10**10}, SizeLimitError, "path of 10000000000 images"),
    "k = 10**9": ("anomaly_score", (X,), {"method": "elbo", "k": 10**9}, SizeLimitError, "k=1000000000"),
    "temperature 1e39": ("generate", (2,), {"temperature": 1e39}, InputError, r"temperature .*\[0, 1000\]"),
    "temperature string": ("generate", (2,), {"temperature": "1"}, InputError, "temperature"),
    "with_model(None)": ("with_model", (None,), {}, InputError, "with_model needs a model name"),
}
AE_ONLY = {
    "sample posterior on AE": ("encode", (X,), {"posterior": "sample"}, ConfigError, "needs a VAE"),
    "elbo on AE": ("anomaly_score", (X,), {"method": "elbo"}, ConfigError, "needs a VAE"),
    "encode_params on AE": ("encode_params", (X,), {}, InputError, "needs a VAE"),
}


RUNTIMES = ["embedded", pytest.param("http", marks=pytest.mark.triton),
            pytest.param("grpc", marks=pytest.mark.triton)]


@pytest.fixture(scope="module", params=RUNTIMES)
def clients(request):
    """{"vae": Client, "ae": Client} on one runtime: a VAE and a non-VAE model."""
    if request.param == "embedded":
        target = dict(repository=request.getfixturevalue("client_repo"))
    else:
        server = request.getfixturevalue("triton_server")
        target = dict(url=server.url_http if request.param == "http" else server.url_grpc, timeout=20)
    with aeserve.Client(**target) as first:
        cards = first.models()
        vae = "mnist_vae" if "mnist_vae" in cards else next(n for n, c in cards.items() if c.is_vae)
        ae = next(n for n, c in sorted(cards.items()) if not c.is_vae)
        with first.with_model(vae) as v, first.with_model(ae) as a:
            yield {"vae": v, "ae": a}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_vae(clients, case):
    _check(clients["vae"], *BAD_INPUTS[case])


@pytest.mark.parametrize("case", sorted(AE_ONLY))
def test_bad_input_ae(clients, case):
    _check(clients["ae"], *AE_ONLY[case])


def _check(client, method, args, kwargs, exc, match):
    with pytest.raises(exc, match=match) as info:
        getattr(client, method)(*args, **kwargs)
    assert isinstance(info.value, AeserveError)
    assert info.value.__traceback__ is not None and len(str(info.value)) > 10


def test_foreign_model_payload_and_wrong_version(clients):
    blob = clients["ae"].compress(X)
    with pytest.raises(PayloadError, match=clients["ae"].model):
        clients["vae"].decompress(blob)
    newer = clients["vae"].with_model(clients["vae"].model)
    newer._info = dataclasses.replace(newer._info, version=newer.version + 1)   # as if re-exported
    with newer, pytest.raises(PayloadError, match="version"):
        newer.decompress(clients["vae"].compress(X))


def test_unknown_model_lists_available(client_repo):
    with pytest.raises(ModelNotFoundError, match="available: t_ae, t_vae"):
        aeserve.Client(repository=client_repo, model="mnist_nope")
    with pytest.raises(RepositoryError, match="invalid model name"):
        aeserve.Client(repository=client_repo, model="../etc")
    with pytest.raises(InputError, match="model must be"):
        aeserve.Client(repository=client_repo, model=3)
    with aeserve.Client(repository=client_repo) as c, pytest.raises(ModelNotFoundError):
        c.with_model("nope")


def test_bad_connection_arguments(client_repo, tmp_path):
    with pytest.raises(RepositoryError, match="does not exist"):
        aeserve.Client(repository=tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="no models"):
        aeserve.Client(repository=tmp_path / "empty")
    with pytest.raises(InputError, match="max_in_flight"):
        aeserve.Client(repository=client_repo, max_in_flight=0)
    with pytest.raises(InputError, match="url must be"):
        aeserve.Client(8000)
    with pytest.raises(ConfigError, match="unsupported URL scheme"):
        aeserve.Client("ftp://localhost")
    with pytest.raises(ServerUnavailableError):
        aeserve.Client("grpc://127.0.0.1:1", connect_timeout=1)
    with pytest.raises(InputError, match="timeout"):
        aeserve.Client("http://127.0.0.1:1", timeout=-1)


@pytest.mark.parametrize("url", [None, "http://127.0.0.1:1", "grpc://127.0.0.1:1"])
@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "5", True, None])
def test_bad_timeout_in_every_runtime(client_repo, url, bad):
    """Checked before anything connects: an InputError, not 'server unreachable'."""
    target = {"repository": client_repo} if url is None else {"url": url}
    for key in ("timeout", "connect_timeout"):
        with pytest.raises(InputError, match=f"{key} must be a positive finite number of seconds"):
            aeserve.Client(**target, **{key: bad})


def test_card_the_client_does_not_understand(client_repo, tmp_path):
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(client_repo, repo)
    cfg = repo / "t_ae_encoder" / "config.pbtxt"
    cfg.write_text(cfg.read_text().replace('string_value: "mlp"', 'string_value: "transformer"'))
    with pytest.raises(CardError, match="unknown arch 'transformer'"):
        aeserve.Client(repository=repo, model="t_ae")


def test_unknown_model_on_every_runtime(clients):
    with pytest.raises(ModelNotFoundError, match="available: .*" + clients["vae"].model):
        clients["vae"].with_model("no_such_model")
