"""inpaint, upscale, colorize, anomaly_map, features and classify over a real Triton server
(bundled, HTTP and gRPC) equal the embedded answers: on hand-built models in a server of
their own (a colourisation model ships nowhere), and on the shipped restoration models and
classifier in the session's server."""

from __future__ import annotations

import numpy as np
import pytest
from apps_helpers import restoration_repository
from eval_fixtures import write_prior_vae

from aeserve import Client, restoration

pytestmark = pytest.mark.triton
TOL = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    from aeserve.serve import free_ports, serve

    root = restoration_repository(tmp_path_factory.mktemp("apps_triton") / "repo")
    write_prior_vae(root, "prior")
    http, grpc, metrics = free_ports(3)
    server = serve(root, http_port=http, grpc_port=grpc, metrics_port=metrics, ready_timeout=120)
    try:
        yield server, root
    finally:
        server.stop()


def _pair(url, root, model):
    return Client(url, model=model, timeout=60), Client(None, model=model, repository=root)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_every_new_call_matches_embedded(app_server, protocol):
    server, root = app_server
    url = server.url_http if protocol == "http" else server.url_grpc
    rng = np.random.default_rng(0)
    x = rng.random((37, 1, 28, 28), dtype=np.float32)          # > max_batch_size 16: split
    rgb = rng.random((20, 3, 16, 16), dtype=np.float32)
    mask = restoration.patch_masks(rng, 37, 28, 28)
    calls = {
        "t_inpaint": lambda c: c.inpaint(x, mask),
        "t_sr": lambda c: c.upscale(restoration.downsample(x, 4)),
        "t_color": lambda c: c.colorize(restoration.to_gray(rgb)),
        "prior": lambda c: (c.anomaly_map(x), c.anomaly_map(x, method="nll", k=3), c.features(x),
                            c.classify(x, classifier="t_ident")),
    }
    for model, call in calls.items():
        remote, local = _pair(url, root, model)
        with remote, local:
            got, want = call(remote), call(local)
            for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
                np.testing.assert_allclose(g, w, **TOL, err_msg=model)
            if model == "prior":
                assert remote.runtime.classifiers() == ["t_ident"]
                assert remote.classifier_card("t_ident") == local.classifier_card("t_ident")


def test_shipped_restoration_models_and_classifier_are_served(triton_server, serving_repository):
    from aeserve.repository import Repository

    repo = Repository(serving_repository)
    x = np.random.default_rng(1).random((9, 1, 28, 28), dtype=np.float32)
    names = repo.models()
    with Client(triton_server.url_grpc, model="mnist_vae", timeout=60) as remote, \
            Client(None, model="mnist_vae", repository=serving_repository) as local:
        for clf in repo.classifiers():
            np.testing.assert_allclose(remote.classify(x, classifier=clf), local.classify(x, classifier=clf), **TOL)
        for name in names:
            task = repo.model(name).card.restores
            if task not in ("inpaint", "upscale"):
                continue
            with remote.with_model(name) as r, local.with_model(name) as e:
                if task == "inpaint":
                    m = restoration.center_box_mask(28, 28)
                    np.testing.assert_allclose(r.inpaint(x, m), e.inpaint(x, m), **TOL)
                else:
                    low = restoration.downsample(x, max(e.upscale_factors))
                    np.testing.assert_allclose(r.upscale(low), e.upscale(low), **TOL)
