"""The encoder as a pretrained model, in ``aeserve.Client``: features and classify.

    c = aeserve.Client(model="mnist_vae_beta1")
    f = c.features(x)             # (N, latent_dim): the encoder's code, the feature vector
    p = c.classify(x)             # (N, K) class probabilities from mnist_vae_beta1_classifier
    c.class_names                 # ["0", "1", ...] from the classifier's card
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..card import ModelCard
from ..errors import InputError
from ..images import as_batch
from .base import ClientBase


class FeatureOps(ClientBase):
    """Encoder features and the fine-tuned ``<model>_classifier`` (made by ``aeserve finetune``)."""

    def features(self, x: Any) -> np.ndarray:
        """The feature vector of each image: the encoder's code float32 ``(N, latent_dim)``
        (``mu`` for a VAE, ``z`` otherwise), what a ``finetune`` classifier's head reads.
        Equal to ``encode(x)`` (posterior mean)."""
        return self.encode(x)

    def classifier_card(self, classifier: str | None = None) -> ModelCard:
        """Card of ``<classifier>_classifier`` (default: this model's); ModelNotFoundError if absent."""
        return self._conn.runtime.classifier_info(self._classifier_name(classifier)).card

    @property
    def class_names(self) -> list[str]:
        """Class names of this model's classifier, index = column of ``classify``'s output."""
        return list(self.classifier_card().class_names or ())

    def _classifier_name(self, classifier: str | None) -> str:
        if classifier is not None and not isinstance(classifier, str):
            raise InputError(f"classifier must be a model name (str) or None, got {type(classifier).__name__}")
        return self.model if classifier is None else classifier

    def classify(self, x: Any, *, classifier: str | None = None) -> np.ndarray:
        """Class probabilities float32 ``(N, K)`` from the served ``<name>_classifier``
        (``name`` = this model unless ``classifier`` names another); ``argmax(1)`` indexes
        ``class_names``. ModelNotFoundError if no such classifier (the message lists the
        available ones); InputError for bad images."""
        name = self._classifier_name(classifier)
        rt = self._conn.runtime
        info = rt.classifier_info(name)
        x = as_batch(x, info.card.input_shape, what=f"images for classifier {name + '_classifier'!r}")
        return self._map(len(x), lambda s, e: rt.classify(name, x[s:e]), size=info.max_batch_size,
                         desc="classify")[0]
