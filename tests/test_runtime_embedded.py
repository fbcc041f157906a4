"""aeserve.runtime.embedded + runtime.connect: ORT sessions over a local repository."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from _repo_fixtures import MAX_BATCH, images

from aeserve import runtime
from aeserve.errors import (
    ClientClosedError,
    ConfigError,
    InferenceError,
    InputError,
    MismatchedPairError,
    ModelNotFoundError,
    RepositoryError,
)
from aeserve.runtime.embedded import EmbeddedRuntime


@pytest.fixture(scope="module")
def rt(client_repo):
    r = EmbeddedRuntime(client_repo)
    yield r
    r.close()


def test_models_and_info(rt):
    assert rt.models() == ["t_ae", "t_vae"]
    info = rt.model_info("t_vae")
    assert (info.name, info.max_batch_size, info.version) == ("t_vae", MAX_BATCH, 1)
    assert info.card.family == "vae" and info.card.latent_dim == 16
    assert rt.model_info("t_ae").card.latent_dim == 2
    assert "CPUExecutionProvider" in rt.providers("t_vae")


def test_encode_decode_contract(rt):
    x = images(5)
    out = rt.encode("t_vae", x)
    assert sorted(out) == ["logvar", "mu"] and out["mu"].shape == (5, 16) and out["mu"].dtype == np.float32
    x_hat = rt.decode("t_vae", out["mu"])
    assert x_hat.shape == (5, 1, 28, 28) and x_hat.dtype == np.float32
    assert 0.0 <= x_hat.min() and x_hat.max() <= 1.0
    assert list(rt.encode("t_ae", x)) == ["z"]
    # batch rows are independent: row 3 alone equals row 3 in the batch
    np.testing.assert_allclose(rt.encode("t_vae", x[3:4])["mu"][0], out["mu"][3], atol=1e-6)


def test_one_request_is_bounded_and_shaped(rt):
    with pytest.raises(InputError, match=f"1..{MAX_BATCH}"):
        rt.encode("t_vae", images(MAX_BATCH + 1))
    with pytest.raises(InputError, match=r"expected \(n, 16\)"):
        rt.decode("t_vae", np.zeros((2, 3), np.float32))
    with pytest.raises(InputError, match=r"expected \(n, 1, 28, 28\)"):
        rt.encode("t_vae", np.zeros((2, 28, 28), np.float32))


def test_concurrent_requests_match_sequential(rt):
    zs = [np.random.default_rng(i).standard_normal((MAX_BATCH, 16)).astype(np.float32) for i in range(12)]
    seq = [rt.decode("t_vae", z) for z in zs]
    with ThreadPoolExecutor(4) as pool:
        par = list(pool.map(lambda z: rt.decode("t_vae", z), zs))
    for a, b in zip(seq, par):
        np.testing.assert_array_equal(a, b)


def test_unknown_model_and_missing_repository(rt, tmp_path):
    with pytest.raises(ModelNotFoundError, match="available: t_ae, t_vae"):
        rt.model_info("nope")
    with pytest.raises(RepositoryError, match="does not exist"):
        EmbeddedRuntime(tmp_path / "missing")


def test_corrupt_onnx_is_inference_error(client_repo, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(client_repo, repo)
    (repo / "t_ae_decoder" / "1" / "model.onnx").write_bytes(b"garbage")
    with EmbeddedRuntime(repo) as r:
        assert r.encode("t_ae", images(2))["z"].shape == (2, 2)
        with pytest.raises(InferenceError, match="cannot load"):
            r.decode("t_ae", np.zeros((2, 2), np.float32))


def test_connect_selects_runtime(client_repo, monkeypatch):
    monkeypatch.delenv("AESERVE_URL", raising=False)
    with runtime.connect(None, client_repo) as r:
        assert isinstance(r, EmbeddedRuntime) and r.target == f"embedded:{client_repo}"
    monkeypatch.setenv("AESERVE_URL", f"embedded:{client_repo}")
    with runtime.connect(None) as r:
        assert isinstance(r, EmbeddedRuntime) and r.models() == ["t_ae", "t_vae"]
    monkeypatch.setenv("AESERVE_URL", "ftp://host")
    with pytest.raises(ConfigError, match="unsupported URL scheme 'ftp'"):
        runtime.connect(None)
    with runtime.connect("embedded", client_repo) as r:  # explicit url wins over the env
        assert isinstance(r, EmbeddedRuntime)
    with runtime.connect(None, client_repo) as r:         # so does an explicit repository
        assert isinstance(r, EmbeddedRuntime)


def test_closed_runtime_refuses(client_repo):
    r = EmbeddedRuntime(client_repo)
    r.close()
    with pytest.raises(ClientClosedError, match="closed"):
        r.encode("t_ae", images(1))


def _set_export_id_in_config(path, value: str) -> None:
    from aeserve.export.triton_config import config_text
    from aeserve.repository import parse_config

    cfg = parse_config(path.read_text())
    cfg.parameters["aeserve.export_id"].string_value = value
    path.write_text(config_text(cfg))


def test_pair_from_two_exports_is_refused(client_repo, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(client_repo, repo)
    _set_export_id_in_config(repo / "t_vae_decoder" / "config.pbtxt", "0" * 32)
    with EmbeddedRuntime(repo) as r:
        with pytest.raises(MismatchedPairError, match="'t_vae'.*encoder and decoder come from different exports"):
            r.model_info("t_vae")
        with pytest.raises(MismatchedPairError):
            r.decode("t_vae", np.zeros((1, 16), np.float32))
        assert r.model_info("t_ae").card.export_id  # the other model is served


def test_graph_from_another_export_than_its_config_is_refused(client_repo, tmp_path):
    import onnx

    repo = tmp_path / "repo"
    shutil.copytree(client_repo, repo)
    path = repo / "t_vae_decoder" / "1" / "model.onnx"
    proto = onnx.load(str(path))
    next(p for p in proto.metadata_props if p.key == "aeserve.export_id").value = "f" * 32
    onnx.save(proto, str(path))
    with EmbeddedRuntime(repo) as r:
        assert r.encode("t_vae", images(2))["mu"].shape == (2, 16)
        with pytest.raises(MismatchedPairError, match="decoder config.pbtxt and decoder graph"):
            r.decode("t_vae", np.zeros((1, 16), np.float32))


def test_requests_made_alone_run_on_their_own_session_with_the_same_results(client_repo):
    """Inside alone() a request runs on a second session with solo_threads; outside, on the
    session with intra_op_threads; both give the same bits (and one thread-local flag does not
    leak to other threads)."""
    r = EmbeddedRuntime(client_repo, intra_op_threads=1, solo_threads=2)
    z = np.random.default_rng(0).standard_normal((MAX_BATCH, 16)).astype(np.float32)
    try:
        shared = r.decode("t_vae", z)
        with r.alone():
            solo = r.decode("t_vae", z)
            with ThreadPoolExecutor(1) as pool:
                pool.submit(r.decode, "t_vae", z).result()
        assert sorted(r._sessions) == ["t_vae_decoder", "t_vae_decoder/solo"]
        np.testing.assert_array_equal(solo, shared)
        opts = r._sessions["t_vae_decoder/solo"].get_session_options()
        assert opts.intra_op_num_threads == 2
        assert r._sessions["t_vae_decoder"].get_session_options().intra_op_num_threads == 1
    finally:
        r.close()
    same = EmbeddedRuntime(client_repo, intra_op_threads=2, solo_threads=2)  # one session serves both
    try:
        with same.alone():
            same.decode("t_vae", z)
        same.decode("t_vae", z)
        assert sorted(same._sessions) == ["t_vae_decoder"]
    finally:
        same.close()
