"""aeserve.contract: the tensor names export writes and the runtimes read."""

from __future__ import annotations

import pytest

from aeserve.card import ModelCard
from aeserve.contract import encoder_outputs, tensor_names


@pytest.mark.parametrize("family, outputs", [("vae", ("mu", "logvar")), ("ae", ("z",)), ("dae", ("z",))])
def test_encoder_outputs_follow_the_family(family, outputs):
    card = ModelCard(family, "mlp", (1, 28, 28), 16, "bernoulli", "mnist", {})
    assert encoder_outputs(card) == outputs
    assert tensor_names(card) == {"encoder_in": ("x",), "encoder_out": outputs,
                                  "decoder_in": ("z",), "decoder_out": ("x_hat",)}
