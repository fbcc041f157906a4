"""List the models of a repository with their cards (no torch, no onnx).

    rows = list_models("model_repository")     # list[ModelInfo]
    print(format_table(rows))

In: a repository path (default: ``aeserve.repository.default_repository()``). Out: one
``ModelInfo`` per encoder/decoder pair, sorted by name. A model whose config or card
is unreadable is listed with ``error`` set instead of failing the whole listing.
Raises RepositoryError if the repository is missing or not a directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..errors import AeserveError
from ..repository import Repository


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str = ""
    arch: str = ""
    latent_dim: int = 0
    dataset: str = ""
    input_shape: tuple[int, ...] = ()
    versions: tuple[int, ...] = ()
    max_batch_size: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def list_models(repo: str | os.PathLike[str] | None = None) -> list[ModelInfo]:
    """Every model in ``repo`` with family, arch, latent size, dataset, versions and test metrics."""
    repository = Repository(repo)
    out = []
    for name in sorted(repository.models()):
        try:
            m = repository.model(name)
        except AeserveError as e:
            out.append(ModelInfo(name, error=str(e)))
            continue
        c = m.card
        out.append(ModelInfo(name, c.family, c.arch, c.latent_dim, c.dataset, tuple(c.input_shape),
                             tuple(m.versions), m.max_batch_size, dict(c.metrics)))
    return out


def format_table(rows: list[ModelInfo]) -> str:
    """A plain-text table: name, family, arch, latent, dataset, versions, max batch, test metrics."""
    if not rows:
        return "no models in repository"
    header = ("name", "family", "arch", "latent", "dataset", "versions", "max_batch", "metrics")
    lines = [header]
    for r in rows:
        if r.error:
            lines.append((r.name, "?", "?", "?", "?", "?", "?", f"error: {r.error}"))
            continue
        metrics = " ".join(f"{k}={v:.4g}" for k, v in sorted(r.metrics.items()) if k.startswith("test_"))
        lines.append((r.name, r.family, r.arch, str(r.latent_dim), r.dataset,
                      ",".join(str(v) for v in r.versions), str(r.max_batch_size), metrics or "-"))
    widths = [max(len(row[i]) for row in lines) for i in range(len(header) - 1)]
    return "\n".join(("  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths)) + "  " + row[-1]).rstrip()
                     for row in lines)
