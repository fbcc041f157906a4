"""Autoencoder families (torch). Every module in this package that ``@register``s a
family is imported here, so adding a family is adding one file.

    from aeserve.models import build_model
    model = build_model(card)          # card: aeserve.card.ModelCard
"""

from __future__ import annotations

import importlib
import pkgutil

from ..card import ModelCard
from ..errors import ConfigError
from .base import REGISTRY, Autoencoder, register

for _m in pkgutil.iter_modules(__path__):
    if _m.name not in ("base", "arch"):
        importlib.import_module(f"{__name__}.{_m.name}")


def build_model(card: ModelCard) -> Autoencoder:
    """Build an untrained model for ``card``. Raises ConfigError on an unknown family/arch."""
    if card.family not in REGISTRY:
        raise ConfigError(f"unknown family {card.family!r}; expected one of {', '.join(sorted(REGISTRY))}")
    return REGISTRY[card.family](card)


__all__ = ["Autoencoder", "REGISTRY", "build_model", "register"]
