"""Shared pytest fixtures. Owned by the serving work; other test files keep their fixtures local."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shipped_repository() -> Path:
    """The committed Triton model repository with the trained default models."""
    return PROJECT_ROOT / "model_repository"
