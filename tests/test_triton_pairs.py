"""A real Triton server serving an encoder and a decoder from two different exports: no
aeserve Client (gRPC or HTTP) uses the pair; the typed error says why."""

from __future__ import annotations

import shutil

import pytest

from aeserve import Client
from aeserve.errors import MismatchedPairError
from aeserve.export.triton_config import config_text
from aeserve.repository import CONFIG_FILENAME, Repository, parse_config
from aeserve.serve import free_ports, serve

pytestmark = pytest.mark.triton


@pytest.fixture(scope="module")
def mixed_server(serving_repository, tmp_path_factory):
    """Our own server over one VAE whose decoder config names another export."""
    repo = Repository(serving_repository)
    name = next(n for n in repo.models() if repo.model(n).card.is_vae)
    root = tmp_path_factory.mktemp("pairs") / "repo"
    for part in ("_encoder", "_decoder"):
        shutil.copytree(serving_repository / (name + part), root / (name + part))
    path = root / (name + "_decoder") / CONFIG_FILENAME
    cfg = parse_config(path.read_text())
    cfg.parameters["aeserve.export_id"].string_value = "0" * 32
    path.write_text(config_text(cfg))
    h, g, m = free_ports(3)
    with serve(root, http_port=h, grpc_port=g, metrics_port=m) as server:
        yield server, name


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_client_refuses_a_served_pair_from_two_exports(mixed_server, protocol):
    server, name = mixed_server
    url = server.url_grpc if protocol == "grpc" else server.url_http
    with pytest.raises(MismatchedPairError, match=f"'{name}'.*different exports"):
        Client(url, model=name, timeout=10)
