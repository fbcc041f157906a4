"""A real Triton server (``triton_server`` fixture) seen through plain ``tritonclient`` and raw
KServe v2 JSON - not through aeserve's client: metadata, readiness, model cards in the
config, and inference with the documented tensor names at batch 1, 7 and max, compared with
ONNX Runtime run directly on the repository's ONNX files."""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from tritonclient.utils import InferenceServerException

from aeserve.repository import Repository

pytestmark = pytest.mark.triton
PROTOCOLS = ("http", "grpc")


def client(server, protocol: str):
    if protocol == "http":
        return thttp.InferenceServerClient(f"127.0.0.1:{server.http_port}", network_timeout=60)
    return tgrpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")


def infer(server, protocol: str, model: str, name: str, x: np.ndarray, outputs: list[str]) -> dict[str, np.ndarray]:
    mod = thttp if protocol == "http" else tgrpc
    inp = mod.InferInput(name, list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    c = client(server, protocol)
    try:
        r = c.infer(model, [inp], outputs=[mod.InferRequestedOutput(o) for o in outputs])
        return {o: r.as_numpy(o) for o in outputs}
    finally:
        c.close()


def pairs(repo_root):
    repo = Repository(repo_root)
    return [repo.model(n) for n in repo.models()]


def reference(path, name: str, x: np.ndarray, outputs: list[str]) -> dict[str, np.ndarray]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip(outputs, sess.run(outputs, {name: x})))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_server_metadata_live_ready(triton_server, protocol):
    c = client(triton_server, protocol)
    try:
        assert c.is_server_live() and c.is_server_ready()
        meta = c.get_server_metadata()
        meta = meta if isinstance(meta, dict) else {"name": meta.name, "version": meta.version}
        assert meta["name"] == "triton" and meta["version"]
    finally:
        c.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_model_is_ready_with_its_card(triton_server, serving_repository, protocol):
    c = client(triton_server, protocol)
    try:
        models = pairs(serving_repository)
        assert models, "the served repository holds no model"
        for m in models:
            for cfg in (m.encoder_config, m.decoder_config):
                assert c.is_model_ready(cfg.name), f"{cfg.name} not ready"
                served = c.get_model_config(cfg.name)
                if protocol == "http":
                    params = {k: v["string_value"] for k, v in served["parameters"].items()}
                    mbs = served["max_batch_size"]
                else:
                    params = {k: v.string_value for k, v in served.config.parameters.items()}
                    mbs = served.config.max_batch_size
                expected = {k: v.string_value for k, v in cfg.parameters.items()}
                assert params == expected and mbs == cfg.max_batch_size
                assert params == m.card.to_dict()
    finally:
        c.close()


def test_model_metadata_has_the_documented_tensors(triton_server, serving_repository):
    c = client(triton_server, "http")
    try:
        for m in pairs(serving_repository):
            latent, shape = m.card.latent_dim, list(m.card.input_shape)
            enc = c.get_model_metadata(m.encoder_name)
            assert [(t["name"], t["datatype"], t["shape"]) for t in enc["inputs"]] == [("x", "FP32", [-1, *shape])]
            want = ["mu", "logvar"] if m.card.is_vae else ["z"]
            assert sorted(t["name"] for t in enc["outputs"]) == sorted(want)
            assert all(t["shape"] == [-1, latent] and t["datatype"] == "FP32" for t in enc["outputs"])
            dec = c.get_model_metadata(m.decoder_name)
            assert [(t["name"], t["shape"]) for t in dec["inputs"]] == [("z", [-1, latent])]
            assert [(t["name"], t["shape"]) for t in dec["outputs"]] == [("x_hat", [-1, *shape])]
    finally:
        c.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_inference_matches_onnxruntime_at_batch_1_7_max(triton_server, serving_repository, protocol):
    rng = np.random.default_rng(0)
    for m in pairs(serving_repository):
        outs = ["mu", "logvar"] if m.card.is_vae else ["z"]
        for n in (1, 7, m.max_batch_size):
            x = rng.random((n, *m.card.input_shape), dtype=np.float32)
            got = infer(triton_server, protocol, m.encoder_name, "x", x, outs)
            want = reference(m.encoder_path(), "x", x, outs)
            for o in outs:
                assert got[o].shape == (n, m.card.latent_dim) and got[o].dtype == np.float32
                np.testing.assert_allclose(got[o], want[o], rtol=1e-5, atol=1e-5)
            z = rng.standard_normal((n, m.card.latent_dim), dtype=np.float32)
            got = infer(triton_server, protocol, m.decoder_name, "z", z, ["x_hat"])["x_hat"]
            assert got.shape == (n, *m.card.input_shape)
            assert 0.0 <= got.min() and got.max() <= 1.0
            np.testing.assert_allclose(got, reference(m.decoder_path(), "z", z, ["x_hat"])["x_hat"],
                                       rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_over_max_batch_and_wrong_shape_are_refused(triton_server, serving_repository, protocol):
    m = pairs(serving_repository)[0]
    too_many = np.zeros((m.max_batch_size + 1, m.card.latent_dim), np.float32)
    with pytest.raises(InferenceServerException, match="batch"):
        infer(triton_server, protocol, m.decoder_name, "z", too_many, ["x_hat"])
    wrong = np.zeros((2, m.card.latent_dim + 1), np.float32)
    with pytest.raises(InferenceServerException):
        infer(triton_server, protocol, m.decoder_name, "z", wrong, ["x_hat"])
    # the server is still fine afterwards
    ok = infer(triton_server, protocol, m.decoder_name, "z", np.zeros((2, m.card.latent_dim), np.float32), ["x_hat"])
    assert ok["x_hat"].shape == (2, *m.card.input_shape)


def test_kserve_v2_json_over_plain_http(triton_server, serving_repository):
    """What the README's curl example does: POST /v2/models/<name>/infer with JSON."""
    m = pairs(serving_repository)[0]
    z = np.linspace(-1, 1, 2 * m.card.latent_dim, dtype=np.float32).reshape(2, -1)
    body = {"inputs": [{"name": "z", "shape": list(z.shape), "datatype": "FP32", "data": z.ravel().tolist()}],
            "outputs": [{"name": "x_hat"}]}
    req = urllib.request.Request(f"{triton_server.url_http}/v2/models/{m.decoder_name}/infer",
                                 data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        out = json.loads(r.read())["outputs"][0]
    assert out["name"] == "x_hat" and out["shape"] == [2, *m.card.input_shape]
    got = np.asarray(out["data"], np.float32).reshape(out["shape"])
    np.testing.assert_allclose(got, reference(m.decoder_path(), "z", z, ["x_hat"])["x_hat"], rtol=1e-5, atol=1e-5)
