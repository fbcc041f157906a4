"""The tensor contract every exported aeserve model follows (README, "Shipped models").

    from aeserve.contract import ENCODER_INPUT, DECODER_INPUT, DECODER_OUTPUT, encoder_outputs
    encoder_outputs(card)     # ("mu", "logvar") for a VAE, ("z",) for the other families

| graph              | input                          | outputs                                    |
|--------------------|--------------------------------|--------------------------------------------|
| ``<name>_encoder`` | ``x`` FP32 (-1, *input_shape)  | VAE ``mu``, ``logvar``; else ``z`` (-1, d) |
| ``<name>_decoder`` | ``z`` FP32 (-1, latent_dim)    | ``x_hat`` FP32 (-1, *input_shape)          |
| ``<name>_classifier`` | ``x`` FP32 (-1, *input_shape) | ``probs`` FP32 (-1, n_classes)          |

Export writes graphs with these names; the runtimes feed and fetch them by these names.
"""

from __future__ import annotations

from .card import ModelCard

__all__ = ["ENCODER_INPUT", "DECODER_INPUT", "DECODER_OUTPUT", "VAE_OUTPUTS", "AE_OUTPUTS", "CLASSIFIER_OUTPUT",
           "encoder_outputs", "tensor_names"]

ENCODER_INPUT = "x"
DECODER_INPUT = "z"
DECODER_OUTPUT = "x_hat"
VAE_OUTPUTS = ("mu", "logvar")
AE_OUTPUTS = ("z",)
CLASSIFIER_OUTPUT = "probs"   # ``<name>_classifier``: ``x`` -> ``probs`` FP32 (-1, n_classes)


def encoder_outputs(card: ModelCard) -> tuple[str, ...]:
    """Output tensor names of a model's encoder graph: ``VAE_OUTPUTS`` or ``AE_OUTPUTS``."""
    return VAE_OUTPUTS if card.is_vae else AE_OUTPUTS


def tensor_names(card: ModelCard) -> dict[str, tuple[str, ...]]:
    """All four name lists: ``{"encoder_in", "encoder_out", "decoder_in", "decoder_out"}``."""
    return {
        "encoder_in": (ENCODER_INPUT,),
        "encoder_out": encoder_outputs(card),
        "decoder_in": (DECODER_INPUT,),
        "decoder_out": (DECODER_OUTPUT,),
    }
