"""Shared pytest fixtures. Owned by the serving work; other test files keep their fixtures local.

- ``shipped_repository``: the committed ``model_repository/``.
- ``serving_repository``: a private copy of it (or, while none is shipped, a temporary
  repository of untrained exported models: ``mnist_vae`` (MLP VAE) and ``mnist_ae``
  (MLP AE)), so that tests never touch the committed files.
- ``triton_server``: ONE real Triton server per session over ``serving_repository`` on
  free loopback ports (``aeserve.serve.serve``), stopped by its own pid at the end.
- ``client_repo``: THE shared exported test repository of small untrained models
  (``_repo_fixtures.MODELS``: ``t_vae`` conv VAE, ``t_ae`` MLP AE; max_batch 8 so that
  splitting is exercised), exported once per session; tests that only need "some exported
  models" use it instead of exporting their own.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FALLBACK_MODELS = (("mnist_vae", "vae"), ("mnist_ae", "ae"))


@pytest.fixture(scope="session")
def shipped_repository() -> Path:
    """The committed Triton model repository with the trained default models."""
    return PROJECT_ROOT / "model_repository"


def _has_models(root: Path) -> bool:
    from aeserve.repository import Repository

    return root.is_dir() and bool(Repository(root).models())


def _export_untrained(root: Path) -> None:
    import torch  # only for the fallback; the shipped repository needs no torch

    from aeserve.card import ModelCard
    from aeserve.export import export_model
    from aeserve.models import build_model

    torch.manual_seed(0)
    for name, family in FALLBACK_MODELS:
        card = ModelCard(family, "mlp", (1, 28, 28), 16, "bernoulli", "mnist", {})
        card = card.with_extra(**{"anomaly.method": "mse", "anomaly.threshold": 0.05})
        export_model(build_model(card), root, name, max_batch=256, kind="gpu")


@pytest.fixture(scope="session")
def serving_repository(shipped_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the shipped repository, or untrained exported models while none is shipped."""
    root = tmp_path_factory.mktemp("serving") / "model_repository"
    if _has_models(shipped_repository):
        shutil.copytree(shipped_repository, root)
    else:
        _export_untrained(root)
    return root


@pytest.fixture(scope="session")
def triton_server(serving_repository: Path):
    """A real Triton server (``aeserve.serve.serve``) over ``serving_repository`` on free loopback ports."""
    from aeserve.serve import free_ports, serve

    http, grpc, metrics = free_ports(3)
    server = serve(serving_repository, http_port=http, grpc_port=grpc, metrics_port=metrics, ready_timeout=120)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def ray_cluster():
    """ONE local Ray instance (2 CPUs) for the whole session, shut down at its end."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             object_store_memory=256 * 2**20)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def client_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared exported test repository (built once per test session; treat as read-only)."""
    from _repo_fixtures import export_test_repository

    return export_test_repository(tmp_path_factory.mktemp("client_repo"))
