"""The fitted prior over a real Triton server (HTTP and gRPC): the same images as embedded, bit for bit.

The latents are drawn in the client from (seed, item) only, so the server sees the same
decoder inputs as the embedded runtime and returns the same bytes; prefixes of a longer
call equal a shorter call."""

from __future__ import annotations

import numpy as np
import pytest

from aeserve import Client
from aeserve.errors import InputError

pytestmark = pytest.mark.triton


@pytest.fixture(scope="module", params=["http", "grpc"])
def pair(request, triton_server, serving_repository):
    url = triton_server.url_http if request.param == "http" else triton_server.url_grpc
    remote = Client(url, model="mnist_vae", timeout=60)
    local = Client(None, model="mnist_vae", repository=serving_repository)
    assert remote.prior is not None, "the shipped mnist_vae carries a fitted prior"
    yield remote, local
    remote.close()
    local.close()


def test_fitted_generate_matches_embedded_bit_for_bit(pair):
    remote, local = pair
    n = remote.max_batch_size + 37  # two requests
    g = remote.generate(n, seed=11)
    np.testing.assert_array_equal(g, local.generate(n, seed=11))
    np.testing.assert_array_equal(remote.generate(8, seed=11), g[:8])
    np.testing.assert_array_equal(remote.generate(20, seed=2, label=4, temperature=0.8),
                                  local.generate(20, seed=2, label=4, temperature=0.8))
    with pytest.raises(InputError, match="unknown label"):
        remote.generate(2, label=12)


def test_non_vae_generates_through_its_prior_and_scores_agree(pair):
    remote_vae, local_vae = pair
    with remote_vae.with_model("mnist_dae") as remote, local_vae.with_model("mnist_dae") as local:
        np.testing.assert_array_equal(remote.generate(40, seed=5), local.generate(40, seed=5))
        x = local.generate(10, seed=6)
        for method in ("density", "combined"):
            np.testing.assert_allclose(remote.anomaly_score(x, method=method), local.anomaly_score(x, method=method),
                                       rtol=1e-6)
